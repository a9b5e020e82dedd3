"""Settings of the consent API and the opt-out consumer."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from cxone_relay.platform.settings import ConsumerSettings, CoreSettings, CxoneSettings, JsonList
from cxone_relay.workflows.consent.rules import DEFAULT_ALREADY_LISTED, DEFAULT_PERMANENT, ErrorRules


class ConsentApiSettings(CoreSettings):
    opt_out_queue_url: str


class OptOutConsumerSettings(CxoneSettings, ConsumerSettings):
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)
    # JSON lists of phrases (case-insensitive) read in a failed DNC record's error text.
    dnc_already_listed_errors: Annotated[list[str], JsonList] = Field(
        default_factory=lambda: list(DEFAULT_ALREADY_LISTED)
    )
    dnc_permanent_errors: Annotated[list[str], JsonList] = Field(
        default_factory=lambda: list(DEFAULT_PERMANENT)
    )

    @model_validator(mode="after")
    def _every_environment_has_a_dnc_group(self) -> OptOutConsumerSettings:
        names = [environment.name for environment in self.cxone_environments]
        if len(set(names)) != len(names):
            raise ValueError("CXONE_ENVIRONMENTS names must be unique")
        missing = [
            environment.name for environment in self.cxone_environments if not environment.dnc_group_id
        ]
        if missing:
            # Opt-outs go to every environment: one without a group would never get them.
            raise ValueError(f"CXONE_ENVIRONMENTS {', '.join(missing)} has no dnc_group_id")
        return self

    def error_rules(self) -> ErrorRules:
        return ErrorRules.from_lists(self.dnc_already_listed_errors, self.dnc_permanent_errors)
