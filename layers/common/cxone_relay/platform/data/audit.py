"""The audit trail: append-only records of every decision, with no raw phone numbers.

Each record's key is (workflow#subject, time#sequence#action#random), so two records never share
a key. A single put is conditional on the key being new, so it cannot replace history. Batches go
through BatchWriteItem, which cannot carry a condition; there the unique key is the guarantee
(millisecond, per-container sequence and 48 random bits), and the functions' IAM grants only
PutItem, BatchWriteItem and Query on this table, never UpdateItem or DeleteItem.

A record is one decision (AuditEvent), or what one stage did to one subject (StageRecord): its
steps in order, each with its time, outcome, reason and details, written as one item whose
`action` and `outcome` are the last step's, where the subject got to. A queue consumer writes one
such item per message, not one per step: each item is a write unit, and the audit was most of
what a message cost.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cxone_relay.platform.data.dynamo import DynamoTable, Item
from cxone_relay.platform.errors import InvalidRequest
from cxone_relay.platform.redaction import PhoneHasher, mask_phone, redact


class AuditRecordExists(RuntimeError):
    """A write tried to replace an existing audit record."""


@dataclass(frozen=True)
class AuditEvent:
    """One decision about one subject (a message id, a request id, a conversation id)."""

    workflow: str
    subject: str
    action: str
    outcome: str
    reason: str | None = None
    phone: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    # A keyed hash of what the subject was (PhoneHasher.digest), so a later request under the
    # same id can be told apart from a retry without the record holding its content.
    content_hash: str | None = None


def rejected_request(
    workflow: str,
    request: InvalidRequest,
    fields: list[str] | None = None,
    correlation_id: str | None = None,
) -> AuditEvent:
    """A request refused before its workflow judged it, under its API request id, with the fields
    that were wrong: by default their names only, never their values (a value may be a number)."""
    named = fields if fields is not None else [problem.field for problem in request.problems]
    return AuditEvent(
        workflow,
        request.request_id,
        "rejected",
        "rejected",
        request.reason,
        details={"fields": named},
        correlation_id=correlation_id,
    )


@dataclass(frozen=True)
class AuditStep:
    action: str
    outcome: str
    at: float
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditSubject:
    """Whom a stage record is about: its id, and the number and correlation id it carries."""

    subject: str
    phone: str | None = None
    correlation_id: str | None = None


class StageRecord:
    """What one stage did to one subject, step by step, until it is written as one item."""

    def __init__(self, workflow: str, about: AuditSubject, clock: Callable[[], float]) -> None:
        self.workflow = workflow
        self.about = about
        self._clock = clock
        self.steps: list[AuditStep] = []

    def add(self, action: str, outcome: str, reason: str | None = None, **details: Any) -> None:
        self.steps.append(AuditStep(action, outcome, self._clock(), reason, details))

    def has(self, action: str) -> bool:
        return any(step.action == action for step in self.steps)


class AuditTrail:
    def __init__(
        self,
        table: DynamoTable,
        hasher: PhoneHasher,
        retention_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self._hasher = hasher
        self._retention_seconds = retention_days * 86400
        self._clock = clock
        # Orders records written in the same millisecond by this container as they were written.
        self._sequence = itertools.count()

    def stage(self, workflow: str, about: AuditSubject) -> StageRecord:
        return StageRecord(workflow, about, self._clock)

    def to_item(self, event: AuditEvent) -> Item:
        now = self._clock()
        stamp = _iso(now)
        item: Item = {
            "pk": f"{event.workflow}#{event.subject}",
            "sk": f"{stamp}#{next(self._sequence) % 1_000_000:06d}#{event.action}#{uuid.uuid4().hex[:12]}",
            "workflow": event.workflow,
            "subject": event.subject,
            "action": event.action,
            "outcome": event.outcome,
            "recorded_at": stamp,
            "expires_at": int(now + self._retention_seconds),
        }
        if event.reason:
            item["reason"] = redact(event.reason)
        if event.phone:
            item["phone_hash"] = self._hasher.fingerprint(event.phone)
            item["phone_masked"] = mask_phone(event.phone)
        if event.details:
            item["details"] = redact(event.details)
        if event.correlation_id:
            item["correlation_id"] = event.correlation_id
        if event.content_hash:
            item["content_hash"] = event.content_hash
        return item

    def put(self, item: Item) -> None:
        """Write one already-built item, refusing to replace an existing one."""
        if not self._table.put_new(item):
            raise AuditRecordExists(f"audit record {item['pk']} / {item['sk']} already exists")

    def record(self, event: AuditEvent) -> Item:
        item = self.to_item(event)
        self.put(item)
        return item

    def recorded(self, workflow: str, subject: str, action: str) -> list[Item]:
        """The records of one subject with this action (a consistent read of its partition)."""
        return self._table.query(f"{workflow}#{subject}", where={"action": action})

    def record_many(self, events: Iterable[AuditEvent]) -> list[Item]:
        items = [self.to_item(event) for event in events]
        self._table.put_many(items)
        return items

    def stage_item(self, record: StageRecord) -> Item:
        last = record.steps[-1]
        about = record.about
        event = AuditEvent(
            record.workflow,
            about.subject,
            last.action,
            last.outcome,
            phone=about.phone,
            correlation_id=about.correlation_id,
        )
        return self.to_item(event) | {"steps": [_step_item(step) for step in record.steps]}

    def record_stages(self, records: Iterable[StageRecord]) -> list[Item]:
        """One item per record that has steps, in batched writes."""
        items = [self.stage_item(record) for record in records if record.steps]
        self._table.put_many(items)
        return items


class StageAudit:
    """A stage's records for the length of one batch, one per subject, written together."""

    def __init__(self, trail: AuditTrail, workflow: str) -> None:
        self._trail = trail
        self._workflow = workflow
        self._records: dict[str, StageRecord] = {}

    def of(self, about: AuditSubject) -> StageRecord:
        """The subject's record (a message twice in one batch shares one)."""
        if about.subject not in self._records:
            self._records[about.subject] = self._trail.stage(self._workflow, about)
        return self._records[about.subject]

    def write(self) -> None:
        records, self._records = list(self._records.values()), {}
        self._trail.record_stages(records)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def _step_item(step: AuditStep) -> Item:
    item: Item = {"action": step.action, "outcome": step.outcome, "at": _iso(step.at)}
    if step.reason:
        item["reason"] = redact(step.reason)
    if step.details:
        item["details"] = redact(step.details)
    return item
