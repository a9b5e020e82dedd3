"""Settings of the DTMF functions. Tone bounds belong to the API function (it validates and
resolves them); the consumer sends what was accepted, so a bounds change never strands a request
already queued."""

from __future__ import annotations

from pydantic import Field, model_validator

from cxone_relay.platform.settings import ConsumerSettings, CoreSettings, CxoneSettings, HttpUrl
from cxone_relay.workflows.dtmf.rules import (
    DEFAULT_MAX_TONE_MS,
    DEFAULT_MIN_TONE_MS,
    DEFAULT_TONE_DURATION_MS,
    DEFAULT_TONE_SPACING_MS,
    ToneBounds,
    ToneRules,
)


class DtmfApiSettings(CoreSettings):
    dtmf_queue_url: str
    dtmf_tone_duration_ms: int = Field(default=DEFAULT_TONE_DURATION_MS, ge=1, le=10_000)
    dtmf_min_tone_duration_ms: int = Field(default=DEFAULT_MIN_TONE_MS, ge=1, le=10_000)
    dtmf_max_tone_duration_ms: int = Field(default=DEFAULT_MAX_TONE_MS, ge=1, le=10_000)
    dtmf_tone_spacing_ms: int = Field(default=DEFAULT_TONE_SPACING_MS, ge=1, le=10_000)
    dtmf_min_tone_spacing_ms: int = Field(default=DEFAULT_MIN_TONE_MS, ge=1, le=10_000)
    dtmf_max_tone_spacing_ms: int = Field(default=DEFAULT_MAX_TONE_MS, ge=1, le=10_000)

    @model_validator(mode="after")
    def _defaults_within_bounds(self) -> DtmfApiSettings:
        for name in ("duration", "spacing"):
            default = getattr(self, f"dtmf_tone_{name}_ms")
            low = getattr(self, f"dtmf_min_tone_{name}_ms")
            high = getattr(self, f"dtmf_max_tone_{name}_ms")
            if not low <= default <= high:
                raise ValueError(
                    f"DTMF_TONE_{name.upper()}_MS ({default}) must lie within DTMF_MIN_TONE_{name.upper()}_MS"
                    f" ({low}) and DTMF_MAX_TONE_{name.upper()}_MS ({high})"
                )
        return self

    def tone_rules(self) -> ToneRules:
        return ToneRules(
            duration=ToneBounds(
                self.dtmf_tone_duration_ms, self.dtmf_min_tone_duration_ms, self.dtmf_max_tone_duration_ms
            ),
            spacing=ToneBounds(
                self.dtmf_tone_spacing_ms, self.dtmf_min_tone_spacing_ms, self.dtmf_max_tone_spacing_ms
            ),
        )


class DtmfConsumerSettings(CxoneSettings, ConsumerSettings):
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)
    # Optional: left empty, the audit payload goes to the audit table only.
    dtmf_audit_webhook_url: HttpUrl | None = None
    # Short on purpose: the webhook runs after the batch's sends, but still inside the invocation.
    dtmf_audit_webhook_timeout_seconds: float = Field(default=2.0, gt=0, le=10)
    dtmf_audit_webhook_max_attempts: int = Field(default=3, ge=1, le=5)
    # All webhook posts of one batch together, so an unreachable webhook cannot hold the consumer.
    dtmf_audit_webhook_batch_seconds: float = Field(default=8.0, gt=0, le=20)
