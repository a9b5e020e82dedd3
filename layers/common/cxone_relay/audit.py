"""The audit trail: append-only records of every decision, with no raw phone numbers.

Each record's key is (subject, time#sequence#action#random), so two records never share a key.
A single put is conditional on the key being new, so it cannot replace history. Batches go
through BatchWriteItem (25 per call, the DynamoDB limit), which cannot carry a condition; there
the unique key is the guarantee (millisecond, per-container sequence and 48 random bits), and the
functions' IAM grants only PutItem and BatchWriteItem, never UpdateItem or DeleteItem.
Unprocessed items are retried with backoff; a write that still fails raises, so the record is
retried rather than lost.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from cxone_relay.redaction import PhoneHasher, mask_phone, redact

BATCH_LIMIT = 25
_serializer = TypeSerializer()


class AuditRecordExists(RuntimeError):
    """A write tried to replace an existing audit record."""


class AuditWriteFailed(RuntimeError):
    """DynamoDB kept some records unprocessed after every retry."""


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


class AuditWriter:
    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any,
        hasher: PhoneHasher,
        retention_days: int,
        clock: Callable[[], float] = time.time,
        sleeper: Callable[[float], None] = time.sleep,
        max_rounds: int = 6,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb_client
        self._hasher = hasher
        self._retention_seconds = retention_days * 86400
        self._clock = clock
        self._sleep = sleeper
        self._max_rounds = max_rounds
        # Orders records written in the same millisecond by this container as they were written.
        self._sequence = itertools.count()

    def to_item(self, event: AuditEvent) -> dict[str, Any]:
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        item: dict[str, Any] = {
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
        return item

    def put(self, item: dict[str, Any]) -> None:
        """Write one already-built item, refusing to replace an existing one."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=_serialize(item),
                ConditionExpression="attribute_not_exists(pk) AND attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise AuditRecordExists(f"audit record {item['pk']} / {item['sk']} already exists") from None
            raise

    def record(self, event: AuditEvent) -> dict[str, Any]:
        item = self.to_item(event)
        self.put(item)
        return item

    def record_many(self, events: Iterable[AuditEvent]) -> list[dict[str, Any]]:
        items = [self.to_item(event) for event in events]
        for start in range(0, len(items), BATCH_LIMIT):
            self._write_batch(items[start : start + BATCH_LIMIT])
        return items

    def _write_batch(self, items: Sequence[dict[str, Any]]) -> None:
        requests = [{"PutRequest": {"Item": _serialize(item)}} for item in items]
        for round_number in range(self._max_rounds):
            response = self._dynamodb.batch_write_item(RequestItems={self._table: requests})
            requests = response.get("UnprocessedItems", {}).get(self._table, [])
            if not requests:
                return
            # Unprocessed items mean throttling: back off before asking again.
            self._sleep(min(2.0, 0.05 * (2**round_number)))
        raise AuditWriteFailed(
            f"{len(requests)} audit records still unprocessed after {self._max_rounds} rounds"
        )


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(_dynamo_safe(value)) for key, value in item.items()}


def _dynamo_safe(value: Any) -> Any:
    """DynamoDB numbers are Decimal, never float."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _dynamo_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_safe(item) for item in value]
    return value
