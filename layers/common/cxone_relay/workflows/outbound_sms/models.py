"""Outbound SMS and delivery status as clients send them, as they travel on the queues, and the
answers. Request fields are camelCase as in the seed payloads; snake_case is accepted too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from cxone_relay.platform.phone import PHONE_TEXT_PATTERN
from cxone_relay.platform.request_models import RequestModel

MAX_RECIPIENTS = 100
# Far above any configured segment limit (at most 30 parts of 153): bounds the work of counting.
MAX_TEXT_LENGTH = 5000
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, no spaces

PhoneText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=40, pattern=PHONE_TEXT_PATTERN)
]
# The text goes out as written: no trimming (a trailing space is billed like any character).
MessageText = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=1, max_length=MAX_TEXT_LENGTH)
]
Timestamp = Annotated[
    datetime,
    Field(strict=False),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}),
]
ChannelStatus = Literal["queued", "sent", "delivered", "undelivered", "failed"]


def as_utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the representable range") from None


class Segmentation(RequestModel):
    enabled: bool = Field(
        default=True,
        description="false: the text must fit one segment (no multi-part message); true: up to the limit.",
    )


class OutboundSmsRequest(RequestModel):
    """Body of POST /sms/outbound. Numbers are checked and normalised by the intake (the default
    region is configuration), the segment limit too."""

    to: list[PhoneText] = Field(
        min_length=1,
        max_length=MAX_RECIPIENTS,
        description="1 to 100 distinct recipients, E.164 or national format.",
    )
    from_: PhoneText = Field(alias="from", description="The number the campaign is sent from.")
    text: MessageText = Field(description="The message, sent as written (or smart-encoded).")
    campaign_id: str = Field(
        min_length=1,
        max_length=128,
        validation_alias=AliasChoices("campaignId", "campaign_id"),
        description="The campaign the send belongs to (campaign_id is accepted too).",
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        validation_alias=AliasChoices("webhookUrl", "webhook_url"),
        description="Where each message's final status is POSTed, signed like the delivery webhook.",
    )
    segmentation: Segmentation | None = Field(
        default=None, description="Whether a multi-part message is allowed."
    )
    smart_encoding: bool = Field(
        default=False,
        validation_alias=AliasChoices("smartEncoding", "smart_encoding"),
        description="Replace typographic characters by GSM ones first (Twilio's table).",
    )
    dry_run: bool = Field(
        default=False,
        validation_alias=AliasChoices("dryRun", "dry_run"),
        description="Only say what would happen: nothing is stored, queued or sent.",
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("campaign_id")
    @classmethod
    def _campaign_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class MessageAnswer(BaseModel):
    to: str
    message_id: str | None = Field(default=None, serialization_alias="messageId")
    status: Literal["queued", "held"]
    send_after: str | None = Field(default=None, serialization_alias="sendAfter")


class RefusalAnswer(BaseModel):
    to: str
    reasons: list[str]


class OutboundAccepted(BaseModel):
    """202: what became of each recipient. `status` is refused when none was accepted."""

    status: Literal["queued", "refused"]
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    messages: list[MessageAnswer]
    refused: list[RefusalAnswer]


class OutboundDryRun(BaseModel):
    """200 for a dry run: the same verdicts, nothing stored, queued or sent."""

    dry_run: bool = Field(serialization_alias="dryRun")
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    characters: int
    messages: list[MessageAnswer]
    refused: list[RefusalAnswer]


# The dry run's 200, as the API documents it beside the 202.
DRY_RUN_ANSWER = {200: (OutboundDryRun, "Dry run: the verdicts; nothing stored, queued or sent")}


class Verdict(BaseModel):
    """One recipient's verdict, by its position in `to` (no number: this is kept for replays)."""

    recipient: int
    message_id: str | None = None
    status: Literal["queued", "held", "refused"]
    send_after: str | None = None
    reasons: list[str] = Field(default_factory=list)


class IntakeResult(BaseModel):
    """What an accepted request decided, kept in the idempotency table for a replay with the same
    Idempotency-Key: verdicts by position, so no number is stored there."""

    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    characters: int
    verdicts: list[Verdict]


class QueuedOutboundSms(BaseModel):
    """What goes on the outbound-sms queue (and waits in the state table while held)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=128)
    to: str
    sender: str
    text: str  # as it goes out (smart-encoded when asked)
    campaign_id: str
    segments: int
    encoding: str
    webhook_url: str | None = None
    accepted_at: datetime
    correlation_id: str | None = None
    # How often the consumer held this message back. It is part of the consumer's idempotency
    # key: a copy released after a hold is new work, where an SQS redelivery of one copy is not
    # (keyed on the id alone, the release would replay "held" and the message would never go).
    holds: int = Field(default=0, ge=0)

    @field_validator("accepted_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class OutboundOutcome(BaseModel):
    """What the consumer decided for one message; kept in the idempotency table, so no number."""

    id: str
    status: str  # sent, held, refused, already
    cxone_id: str | None = None
    send_after: str | None = None


class DeliveryStatusRequest(RequestModel):
    """Body of POST /sms/status, as the SMS channel reports delivery."""

    message_id: str = Field(
        pattern=ID_PATTERN,
        validation_alias=AliasChoices("messageId", "message_id"),
        description="Our message id, from the send's answer.",
    )
    status: ChannelStatus = Field(description="queued, sent, delivered, undelivered or failed.")
    to: PhoneText = Field(description="The recipient.")
    timestamp: Timestamp = Field(description="When the status was reached: ISO 8601 or epoch seconds.")
    error: str | None = Field(default=None, max_length=500, description="Why it failed, when it did.")

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class StatusAccepted(BaseModel):
    status: Literal["queued"] = "queued"
    message_id: str = Field(serialization_alias="messageId")


class QueuedStatus(BaseModel):
    """A delivery report on the delivery-status queue."""

    model_config = ConfigDict(extra="ignore")

    id: str  # the report's own id (for the consumer's idempotency): message, status, time
    message_id: str
    status: ChannelStatus
    to: str
    timestamp: datetime
    error: str | None = None
    received_at: datetime
    correlation_id: str | None = None

    @field_validator("timestamp", "received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class StatusOutcome(BaseModel):
    id: str
    transition: str  # applied, duplicate, regression, unknown
    status: str | None = None
