"""Opt-out and opt-in requests as clients send them, the answers they get, and the opt-out as it
travels on the opt-out queue (the inbound SMS consumer publishes STOPs in the same shape)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cxone_relay.platform.phone import MAX_PHONE_TEXT, InvalidPhoneNumber, normalise_e164
from cxone_relay.platform.request_models import RequestModel

Source = Literal["web", "ivr", "sms", "agent", "api"]
SOURCES: tuple[str, ...] = ("web", "ivr", "sms", "agent", "api")
REGION_PATTERN = r"^[A-Za-z]{2}$"
MAX_EVIDENCE = 500
# A message id or an API request id; it becomes part of a ledger key and an audit key.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"


class OptOutRequest(RequestModel):
    """Body of POST /opt-out. The number is checked by the intake (the default region is
    configuration), everything else here."""

    phone: str = Field(
        min_length=1,
        max_length=MAX_PHONE_TEXT,
        description=(
            "The number, as typed: E.164, national or international format, a tel: URI;"
            " full-width digits and surrounding spaces are fine."
        ),
    )
    source: Source = Field(description="Where the request came from.")
    region: str | None = Field(
        default=None,
        pattern=REGION_PATTERN,
        description="ISO 3166-1 region for a number without a country code (default: the configured one).",
    )


class OptInRequest(OptOutRequest):
    """Body of POST /opt-in: an opt-out's fields, and where and how consent was given."""

    evidence: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVIDENCE,
        description="Where and how consent was given (a form id, a call recording reference).",
    )


class OptOutQueued(BaseModel):
    status: Literal["queued"] = "queued"
    phone: str = Field(description="The number in E.164, as it will be put on DNC.")


class OptInRecorded(BaseModel):
    status: Literal["recorded"] = "recorded"
    phone: str = Field(description="The number in E.164.")
    consent: Literal["opted_in", "opted_out"] = Field(
        description="The number's status now: opted_out only if an opt-out newer than this opt-in stands."
    )


class HistoryEntry(BaseModel):
    status: Literal["opted_in", "opted_out"]
    source: str
    occurred_at: str
    reference: str
    evidence: str | None = None


class DncEnvironmentState(BaseModel):
    environment: str
    group_id: str
    applied_at: str


class ConsentView(BaseModel):
    """GET /consent/{phone}: the number masked, its status and every change, oldest first."""

    phone: str = Field(description="The number, masked to its last four digits.")
    status: Literal["opted_in", "opted_out", "unknown"]
    updated_at: str | None = Field(description="When the change that set the status happened.")
    history: list[HistoryEntry]
    dnc: list[DncEnvironmentState] = Field(description="The CXone environments whose DNC group has it.")


class QueuedOptOut(BaseModel):
    """An opt-out on the opt-out queue, from the consent API or an inbound STOP."""

    model_config = ConfigDict(extra="ignore")

    phone: str
    source: Source
    reference: str = Field(pattern=REFERENCE_PATTERN)
    requested_at: datetime
    correlation_id: str | None = None

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            normalised = normalise_e164(value)
        except InvalidPhoneNumber as exc:
            raise ValueError(exc.reason) from None
        if normalised != value:
            raise ValueError("is not in E.164")
        return value

    @field_validator("requested_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # The ledger orders changes by their UTC text; a naive time is taken as UTC.
        try:
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:
            # e.g. 0001-01-01T00:30+01:00: pydantic only turns ValueError into a field error.
            raise ValueError("is outside the representable range") from None


class OptOutOutcome(BaseModel):
    """One queued opt-out recorded (kept in the idempotency table: no number)."""

    reference: str
