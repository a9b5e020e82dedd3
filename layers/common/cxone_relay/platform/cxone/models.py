"""What the CXone client takes and gives back: typed values, so no workflow builds a CXone payload
or reads a CXone answer by hand (the client does both, in one place)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from cxone_relay.platform.cxone import endpoints


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


@dataclass(frozen=True)
class ContactQuery:
    """The filters of a digital contacts listing (GET /dfo/3.0/contacts). They go with the first
    page only: a scroll keeps them, and later pages send the scroll token alone."""

    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    # The listing's date window has day resolution: callers filter finer on their own side.
    date_from: date | None = None
    date_to: date | None = None
    sort_by: str | None = endpoints.DFO_SORT_BY_UPDATED
    ascending: bool = True

    def filters(self) -> dict[str, str | list[str]]:
        filters: dict[str, str | list[str]] = {}
        if self.channels:
            filters[endpoints.DFO_FILTER_CHANNEL] = list(self.channels)
        if self.statuses:
            filters[endpoints.DFO_FILTER_STATUS] = list(self.statuses)
        if self.date_from is not None:
            filters[endpoints.DFO_FILTER_DATE_FROM] = self.date_from.strftime(endpoints.DFO_DATE_FORMAT)
        if self.date_to is not None:
            filters[endpoints.DFO_FILTER_DATE_TO] = self.date_to.strftime(endpoints.DFO_DATE_FORMAT)
        if self.sort_by:
            filters[endpoints.DFO_SORTING] = self.sort_by
            filters[endpoints.DFO_SORTING_TYPE] = (
                endpoints.DFO_SORT_ASCENDING if self.ascending else endpoints.DFO_SORT_DESCENDING
            )
        return filters


@dataclass(frozen=True)
class MessageQuery:
    """The filters of a messages listing (GET /dfo/3.0/messages) for the messages of some contacts."""

    contact_ids: tuple[str, ...]
    direction: Literal["inbound", "outbound"] | None = "inbound"

    def filters(self) -> dict[str, str | list[str]]:
        filters: dict[str, str | list[str]] = {endpoints.DFO_FILTER_CONTACT_ID: list(self.contact_ids)}
        if self.direction:
            filters[endpoints.DFO_FILTER_DIRECTION] = self.direction
        return filters


def parse_time(value: Any) -> datetime | None:
    """A DFO timestamp (ISO 8601, usually with Z) as an aware UTC datetime; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class DigitalContact:
    """A contact (case) of a DFO listing, as far as the relay reads it. `subject` and `body` are not
    in NICE's published case schema; they are read when present (the simulator serves them)."""

    id: str
    channel_id: str | None
    status: str | None
    subject: str | None
    body: str | None
    preview: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_listing(cls, item: Mapping[str, Any]) -> DigitalContact | None:
        """None for an item the relay cannot place: no id, or no readable time."""
        contact_id = item.get("id")
        updated = parse_time(item.get("updatedAt")) or parse_time(item.get("statusUpdatedAt"))
        created = parse_time(item.get("createdAt"))
        # A contact never updated since it was created may carry only one of the two.
        created_at, updated_at = created or updated, updated or created
        if not isinstance(contact_id, str | int) or isinstance(contact_id, bool) or str(contact_id) == "":
            return None
        if created_at is None or updated_at is None:
            return None
        return cls(
            id=str(contact_id),
            channel_id=_text(item, "channelId"),
            status=_text(item, "status"),
            subject=_text(item, "subject"),
            body=_text(item, "body"),
            preview=_text(item, "preview"),
            created_at=created_at,
            updated_at=updated_at,
        )


@dataclass(frozen=True)
class DigitalMessage:
    """A message of a DFO messages listing: who wrote it (direction) and its text, if it has one."""

    id: str
    contact_id: str | None
    direction: str | None
    created_at: datetime | None
    text: str | None

    @classmethod
    def from_listing(cls, item: Mapping[str, Any]) -> DigitalMessage | None:
        message_id = item.get("id")
        if not isinstance(message_id, str | int) or isinstance(message_id, bool):
            return None
        content = item.get("messageContent")
        payload = content.get("payload") if isinstance(content, dict) else None
        text = payload.get("text") if isinstance(payload, dict) else None
        contact_id = item.get("contactId", item.get("caseId"))
        return cls(
            id=str(message_id),
            contact_id=None if contact_id is None else str(contact_id),
            direction=_text(item, "direction"),
            created_at=parse_time(item.get("createdAt")),
            text=text if isinstance(text, str) and text.strip() else None,
        )
