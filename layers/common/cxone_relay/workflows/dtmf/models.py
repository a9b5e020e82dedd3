"""A DTMF request as a client sends it, and as it travels on the dtmf queue.

Digits are checked against an explicit ASCII class: `\\d` and `str.isdigit` accept digits of other
scripts (full-width, Arabic-Indic, superscripts), which no keypad can play. The request model
keeps whitespace in `digits` (the shared model strips it elsewhere), so " 12" is refused rather
than quietly repaired.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from cxone_relay.platform.request_models import RequestModel

# Keypad characters only: ASCII 0-9, * and #; 1 to 16 of them.
DIGITS_PATTERN = r"^[0-9*#]{1,16}$"
MIN_TIMEOUT_MS = 1000
MAX_TIMEOUT_MS = 30000
MAX_TEXT_LENGTH = 256

Digits = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=1, max_length=16, pattern=DIGITS_PATTERN)
]


class DtmfSubmission(RequestModel):
    """Body of POST /dtmf. Tone duration and spacing are checked by the intake, against bounds
    that are configuration (DtmfApiSettings)."""

    interaction_id: str = Field(
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description="The CXone agent session (contact) to send the digits to.",
    )
    digits: Digits = Field(description="1 to 16 keypad characters: 0-9, * and # (ASCII only).")
    timeout_ms: int = Field(
        ge=MIN_TIMEOUT_MS,
        le=MAX_TIMEOUT_MS,
        description=(
            "How long the request stays valid, in ms (an integer, 1000 to 30000): digits not sent"
            " within this time of acceptance are not sent at all."
        ),
    )
    sequence_matrix_key: str = Field(
        min_length=1, max_length=MAX_TEXT_LENGTH, description="Which sequence matrix the digits belong to."
    )
    node_transition_flag: bool = Field(description="Whether the digits move the IVR to another node.")
    tone_duration_ms: int | None = Field(
        default=None, description="Length of each tone in ms; default and bounds are configuration."
    )
    tone_spacing_ms: int | None = Field(
        default=None, description="Silence between tones in ms; default and bounds are configuration."
    )


class AcceptedResponse(BaseModel):
    status: str = "queued"
    id: str


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class QueuedDtmf(BaseModel):
    """What the API function puts on the dtmf queue: the request as validated, the tones resolved
    (so the consumer sends exactly what was accepted), and when it was accepted."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=128)
    interaction_id: str = Field(min_length=1)
    digits: str = Field(pattern=DIGITS_PATTERN)
    timeout_ms: int
    sequence_matrix_key: str
    node_transition_flag: bool
    tone_duration_ms: int
    tone_spacing_ms: int
    accepted_at: datetime
    correlation_id: str | None = None

    @field_validator("accepted_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @property
    def deadline(self) -> float:
        """Epoch seconds after which the digits must not be sent."""
        return self.accepted_at.timestamp() + self.timeout_ms / 1000


class DtmfOutcome(BaseModel):
    """What processing one request decided; kept in the idempotency table, so no digits."""

    id: str
    status: str  # sent, session_ended or expired
    cxone_status: int | None = None
    latency_ms: float | None = None
