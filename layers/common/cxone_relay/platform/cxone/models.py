"""What the CXone client takes and gives back: typed values, so no workflow builds a CXone payload
or reads a CXone answer by hand (the client does both, in one place)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True)
class InboundMessage:
    """A message a customer sent us, to store on our DFO channel."""

    external_id: str  # our channel's message id: DFO de-duplicates on it
    thread_id: str
    author_id: str
    text: str
    created_at: datetime
    routing_queue_id: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    id: str | None
    # DFO already had this idOnExternalPlatform on the channel (a retry of a store that landed).
    already_stored: bool = False


@dataclass(frozen=True)
class OutboundMessage:
    thread_id: str
    text: str
    recipients: list[str]  # the first is the primary recipient


@dataclass(frozen=True)
class SentMessage:
    id: str | None
    external_id: str | None


@dataclass(frozen=True)
class StatusUpdate:
    external_id: str
    status: Literal["delivered", "seen", "failed"]
    updated_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class DncRecordResult:
    success: bool
    error: str | None
    formatted_phone: str | None


@dataclass(frozen=True)
class DncResult:
    """The Admin API answers 200 even when some records failed: read `error_count`."""

    error_count: int
    records: list[DncRecordResult] = field(default_factory=list)

    @classmethod
    def from_response(cls, body: dict[str, Any]) -> DncResult:
        result_set = body.get("resultSet") if isinstance(body.get("resultSet"), dict) else {}
        assert isinstance(result_set, dict)
        records = [
            DncRecordResult(
                success=bool(record.get("success")),
                error=None if record.get("error") is None else str(record.get("error")),
                formatted_phone=None
                if record.get("formattedPhone") is None
                else str(record["formattedPhone"]),
            )
            for record in result_set.get("recordResults") or []
            if isinstance(record, dict)
        ]
        reported = result_set.get("errorCount")
        error_count = reported if isinstance(reported, int) else sum(not record.success for record in records)
        return cls(error_count=error_count, records=records)


@dataclass(frozen=True)
class DtmfRequest:
    session_id: str
    sequence: str
    tone_duration_ms: int
    tone_spacing_ms: int | None = None


@dataclass(frozen=True)
class DtmfResult:
    """What the Agent API answered to send-dtmf: its status and body (usually empty), or that the
    agent session no longer exists (the call ended), which is an answer rather than a fault."""

    status: int
    response: dict[str, Any] = field(default_factory=dict)
    session_ended: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a DFO listing; `scroll_token` is None on the last page."""

    items: list[dict[str, Any]]
    scroll_token: str | None
    hits: Any = None
