"""Outbound message status, and messages held for their send window, in the state table.

A message's status only moves forward: queued or held (rank 1), then sent (2), then one final
status (3: delivered, undelivered or failed as the channel reports it, or refused when it was never
sent). Each move is one conditional write on the rank, so a duplicate or a late, out-of-order
callback changes nothing and is told so; a message's details (its CXone ids, when it was sent,
whether a final status was passed on) are set beside the status without touching it.

No key or attribute holds a phone number: the recipient is a keyed hash and a masked form. A held
message is the exception: it is the queued message itself (number and text), kept under the
minute it may go until the release sweep queues it and deletes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cxone_relay.platform.data import keys
from cxone_relay.platform.data.dynamo import DynamoTable

# Status records outlive any delivery callback by far (carriers give up within days).
STATUS_TTL_SECONDS = 90 * 86400
# A held message is released by the sweep, not by TTL: the TTL only cleans up behind a sweep that
# never ran, long after anything could still be sent.
HELD_TTL_SECONDS = 30 * 86400


class MessageStatus(StrEnum):
    HELD = "held"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    REFUSED = "refused"


RANK = {
    MessageStatus.HELD: 1,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.REFUSED: 3,
}
FINAL = frozenset(status for status, rank in RANK.items() if rank == 3)


class Transition(StrEnum):
    """What a status report did to a message."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the message already has this status
    REGRESSION = "regression"  # the message is further on (or final): the report is older news
    UNKNOWN = "unknown"  # no such message


@dataclass(frozen=True)
class MessageRecord:
    message_id: str
    status: MessageStatus
    campaign_id: str
    recipient_hash: str
    recipient_masked: str
    status_at: str
    segments: int
    webhook_url: str | None = None
    send_after: str | None = None
    cxone_id: str | None = None
    cxone_external_id: str | None = None
    sent_at: str | None = None
    reason: str | None = None
    forwarded_to_cxone: str | None = None  # the final status CXone was told
    forwarded_to_webhook: str | None = None  # the final status the send's webhookUrl was told

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> MessageRecord:
        def text(name: str) -> str | None:
            value = item.get(name)
            return None if value is None else str(value)

        return cls(
            message_id=str(item["message_id"]),
            status=MessageStatus(item["status"]),
            campaign_id=str(item["campaign_id"]),
            recipient_hash=str(item["recipient_hash"]),
            recipient_masked=str(item["recipient_masked"]),
            status_at=str(item["status_at"]),
            segments=int(item["segments"]),
            webhook_url=text("webhook_url"),
            send_after=text("send_after"),
            cxone_id=text("cxone_id"),
            cxone_external_id=text("cxone_external_id"),
            sent_at=text("sent_at"),
            reason=text("reason"),
            forwarded_to_cxone=text("forwarded_to_cxone"),
            forwarded_to_webhook=text("forwarded_to_webhook"),
        )


def iso(moment: datetime) -> str:
    """UTC, milliseconds, Z: sorts in time order as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MessageStatusStore:
    def __init__(self, table: DynamoTable, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def create(self, record: MessageRecord) -> bool:
        """The message's first status (held or queued); False if it exists already (a retried
        request that reuses its message ids)."""
        item: dict[str, Any] = {
            **keys.message_status(record.message_id),
            "message_id": record.message_id,
            "status": record.status.value,
            "status_rank": RANK[record.status],
            "status_at": record.status_at,
            "campaign_id": record.campaign_id,
            "recipient_hash": record.recipient_hash,
            "recipient_masked": record.recipient_masked,
            "segments": record.segments,
            "expires_at": int(self._clock()) + STATUS_TTL_SECONDS,
        }
        for name in ("webhook_url", "send_after"):
            if getattr(record, name) is not None:
                item[name] = getattr(record, name)
        return self._table.put_new(item)

    def get(self, message_id: str) -> MessageRecord | None:
        item = self._table.get(keys.message_status(message_id))
        return MessageRecord.from_item(item) if item else None

    def advance(
        self, message_id: str, status: MessageStatus, at: str, *, reason: str | None = None
    ) -> tuple[Transition, MessageRecord | None]:
        """Move the message to `status` if that is further on; otherwise say why not."""
        changes: dict[str, Any] = {"status": status.value, "status_rank": RANK[status], "status_at": at}
        if reason is not None:
            changes["reason"] = reason[:500]
        applied = self._table.update(
            keys.message_status(message_id),
            changes,
            condition="attribute_exists(pk) AND status_rank < :rank",
            rank=RANK[status],
        )
        record = self.get(message_id)
        if applied:
            return Transition.APPLIED, record
        if record is None:
            return Transition.UNKNOWN, None
        if record.status == status:
            return Transition.DUPLICATE, record
        return Transition.REGRESSION, record

    def set_pending(self, message_id: str, status: MessageStatus, send_after: str | None) -> bool:
        """Queued after being held, or held again after being queued (the window closed while it
        waited): both are before sending, so neither is a move forward or back."""
        changes: dict[str, Any] = {"status": status.value, "status_at": iso(self._now())}
        if send_after is not None:
            changes["send_after"] = send_after
        return self._table.update(
            keys.message_status(message_id),
            changes,
            condition="attribute_exists(pk) AND status_rank = :pending",
            pending=RANK[MessageStatus.QUEUED],
        )

    def record_sent(self, message_id: str, cxone_id: str | None, external_id: str | None, at: str) -> None:
        """The send's details, kept whatever the status is by now (a fast delivery report can
        overtake them); the status itself moves with advance()."""
        details = {"cxone_id": cxone_id, "cxone_external_id": external_id, "sent_at": at}
        self._table.update(
            keys.message_status(message_id),
            {name: value for name, value in details.items() if value is not None},
            condition="attribute_exists(pk)",
        )

    def mark_forwarded(self, message_id: str, where: str, status: MessageStatus) -> None:
        """Remember that a final status reached CXone or the webhook, so a retry skips it."""
        field = {"cxone": "forwarded_to_cxone", "webhook": "forwarded_to_webhook"}[where]
        self._table.update(
            keys.message_status(message_id), {field: status.value}, condition="attribute_exists(pk)"
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def minute_of(moment: datetime) -> str:
    """The held-message partition a moment falls in."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class HeldMessage:
    message_id: str
    send_after: str
    message: dict[str, Any]  # the queued message, as it will be put on the queue


class HeldMessages:
    """Messages waiting for their send window, filed by the minute they may go."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def hold(self, message_id: str, send_after: datetime, message: Mapping[str, Any]) -> None:
        self._table.put(
            {
                **keys.held_message(minute_of(send_after), message_id),
                "send_after": iso(send_after),
                # JSON text: numbers come back as they went, not as Decimals.
                "message": json.dumps(dict(message)),
                "expires_at": int(send_after.timestamp()) + HELD_TTL_SECONDS,
            }
        )

    def due_in(self, minute: str) -> list[HeldMessage]:
        """Everything filed under one minute, in message-id order."""
        return [
            HeldMessage(str(item["sk"]), str(item["send_after"]), json.loads(str(item["message"])))
            for item in self._table.query_prefix(keys.held_partition(minute))
        ]

    def release(self, minute: str, message_id: str) -> bool:
        """Forget a held message once it is queued; False if another sweep got there first."""
        return self._table.delete(keys.held_message(minute, message_id), condition="attribute_exists(pk)")
