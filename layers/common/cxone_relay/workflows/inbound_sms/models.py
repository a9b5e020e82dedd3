"""Inbound SMS as the channel sends it, and as it travels on the inbound-sms queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from cxone_relay.platform.phone import PHONE_TEXT_PATTERN
from cxone_relay.platform.request_models import RequestModel

MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
# ISO 8601 text or epoch seconds: the one field read leniently, as channels send either.
Timestamp = Annotated[
    datetime,
    Field(strict=False),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}),
]


def _as_utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:30+01:00: pydantic only turns ValueError into a field error.
        raise ValueError("is outside the representable range") from None


class InboundSmsRequest(RequestModel):
    """Body of POST /sms/inbound. `from` and `to` are checked as phone numbers by the intake
    (the default region is configuration), everything else here."""

    id: str = Field(pattern=MESSAGE_ID_PATTERN, description="The channel's message id; the idempotency key.")
    from_: str = Field(
        alias="from",
        max_length=40,
        pattern=PHONE_TEXT_PATTERN,
        description="Sender, E.164 or national format.",
    )
    to: str = Field(
        max_length=40, pattern=PHONE_TEXT_PATTERN, description="Our number that received the message."
    )
    body: str = Field(
        min_length=1, max_length=1600, description="Message text (up to 10 concatenated segments)."
    )
    opt_in: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("opt_in", "optIn"),
        serialization_alias="opt_in",
        description=(
            "Whether the sender has consented to messaging (optIn is accepted too). Required except"
            " for keywords: STOP, START and HELP are honoured whatever it says."
        ),
    )
    timestamp: Timestamp = Field(description="When the channel received it: ISO 8601 or epoch seconds.")

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)


class QueuedInboundSms(BaseModel):
    """What the API function puts on the inbound-sms queue: normalised numbers, the keyword verdict."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=MESSAGE_ID_PATTERN)
    sender: str
    recipient: str
    body: str
    opt_in: bool | None
    timestamp: datetime
    keyword: str | None = None
    received_at: datetime
    correlation_id: str | None = None

    @field_validator("timestamp", "received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)


class AcceptedResponse(BaseModel):
    status: str = "queued"
    id: str
    keyword: str | None = None


class Routing(BaseModel):
    """Where a message goes: what the rules decided, kept so a replay can rebuild its ticket."""

    category: str
    keywords: list[str]
    language: str
    language_confidence: float
    language_fallback: bool
    queue: str


class InboundOutcome(BaseModel):
    """What processing one queued message decided. Stored in the idempotency table, so it holds
    decisions only, never the message text (a replay takes the text from the queue record)."""

    id: str
    action: str  # routed, keyword:<action>, or keyword:<action>:superseded
    routing: Routing | None = None
    cxone_id: str | None = None  # the stored message's id in CXone, for the audit of a replay
