"""Settings of the outbound SMS and delivery status functions. The quiet-hours window and the
regional ones are shared by the API function (which answers held or queued) and the consumer
(which checks again just before sending)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cxone_relay.platform.settings import ConsumerSettings, CoreSettings, CxoneSettings, EnvModel, JsonList
from cxone_relay.workflows.outbound_sms.quiet_hours import QuietHours, RegionalWindow, Window, default_regions


class RegionSetting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    window: str
    prefixes: list[str] = Field(min_length=1)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        Window.parse(value)
        return value

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.startswith("+") or not prefix[1:].isdigit():
                raise ValueError(f"prefix {prefix!r} must be + and digits (E.164), e.g. +1305")
        return value


def _default_regions() -> list[RegionSetting]:
    return [
        RegionSetting(name=region.name, window=str(region.window), prefixes=list(region.prefixes))
        for region in default_regions()
    ]


class QuietHoursSettings(EnvModel):
    quiet_hours: str = "08:00-21:00"
    # JSON list of {"name", "window", "prefixes"}; default: Florida and Oklahoma 08:00-20:00.
    quiet_hours_regions: Annotated[list[RegionSetting], JsonList] = Field(default_factory=_default_regions)

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, value: str) -> str:
        Window.parse(value)
        return value

    def quiet_hours_rules(self) -> QuietHours:
        return QuietHours(
            Window.parse(self.quiet_hours),
            [
                RegionalWindow(region.name, Window.parse(region.window), tuple(region.prefixes))
                for region in self.quiet_hours_regions
            ],
        )


class OutboundApiSettings(CoreSettings, QuietHoursSettings):
    outbound_queue_url: str
    outbound_max_segments: int = Field(default=10, ge=1, le=30)
    # Idempotency-Key replays: the 24 hours.
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)
    # Only the local stack sets this: webhookUrl may then be http and point at loopback.
    status_webhook_allow_local: bool = False


class OutboundConsumerSettings(CxoneSettings, ConsumerSettings, QuietHoursSettings):
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)


class HeldReleaseSettings(CoreSettings):
    outbound_queue_url: str
    # A first run (no checkpoint yet) looks back this far for held messages already due.
    held_release_lookback_minutes: int = Field(default=60, ge=1, le=10080)
    # What one minute's partition needs (read, queue, delete): no minute starts with less left.
    held_release_minute_seconds: float = Field(default=5.0, gt=0, le=60)


class DeliveryWebhookSettings(CoreSettings):
    delivery_status_queue_url: str
    delivery_webhook_secret_arn: str
    signature_tolerance_seconds: int = Field(default=300, ge=30, le=900)


class DeliveryStatusConsumerSettings(CxoneSettings, ConsumerSettings):
    delivery_webhook_secret_arn: str
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)
    status_webhook_timeout_seconds: float = Field(default=3.0, gt=0, le=10)
    status_webhook_max_attempts: int = Field(default=3, ge=1, le=5)


def webhook_secrets(value: dict[str, Any]) -> list[str]:
    """The secrets in use, from the secret's JSON: current first, then previous (during rotation)."""
    return [str(value[name]) for name in ("current", "previous") if value.get(name)]
