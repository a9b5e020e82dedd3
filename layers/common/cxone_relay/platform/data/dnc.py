"""Where each number stands in each CXone environment's DNC group, and what each DNC call got.

The opt-out consumer reads both before it calls CXone and writes them after, so that:
- a number already in an environment's group is never sent to it again: a batch retried because
  one environment failed goes only to the environments that do not have it yet;
- a call whose content CXone answered with failed records gets a new idempotency key the next
  time (CXone would otherwise replay the failed answer), while a call that got no answer at all
  (a timeout, a 503 after every retry) is made again under the same key.

Keys hold keyed hashes only (keys.py); items hold the masked number, never the number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cxone_relay.platform.data import keys
from cxone_relay.platform.data.dynamo import DynamoTable, Item
from cxone_relay.platform.redaction import PhoneHasher, mask_phone

# A call's content comes back only while its SQS records can: the queue keeps them 14 days.
CALL_LOG_TTL_SECONDS = 15 * 86400


@dataclass(frozen=True)
class DncSync:
    """A number in one environment's DNC group: when it got there, and which request took it."""

    phone: str  # E.164; stored as its hash and masked form only
    environment: str
    group_id: str
    applied_at: datetime
    requested_at: datetime
    source: str
    reference: str


class DncSyncStore:
    def __init__(self, table: DynamoTable, hasher: PhoneHasher) -> None:
        self._table = table
        self._hasher = hasher

    def load(self, phones: Iterable[str], environments: Sequence[str]) -> dict[tuple[str, str], DncSync]:
        """What is known to be synced, keyed (phone, environment), in batched reads."""
        by_key: dict[tuple[str, str], tuple[str, str]] = {}
        for phone in set(phones):
            phone_hash = self._hasher.fingerprint(phone)
            for environment in environments:
                key = keys.dnc_sync(phone_hash, environment)
                by_key[(key["pk"], key["sk"])] = (phone, environment)
        items = self._table.get_many([{"pk": pk, "sk": sk} for pk, sk in by_key])
        found = {}
        for item in items:
            phone, environment = by_key[(str(item["pk"]), str(item["sk"]))]
            found[(phone, environment)] = _sync(phone, environment, item)
        return found

    def save(self, syncs: Iterable[DncSync]) -> None:
        """Unconditional: a number only ever goes into a group, so a second writer of the same
        fact (a redelivered record) can only restate it."""
        self._table.put_many(
            {
                **keys.dnc_sync(self._hasher.fingerprint(sync.phone), sync.environment),
                "phone_masked": mask_phone(sync.phone),
                "environment": sync.environment,
                "group_id": sync.group_id,
                "applied_at": _text(sync.applied_at),
                "requested_at": _text(sync.requested_at),
                "source": sync.source,
                "reference": sync.reference,
            }
            for sync in syncs
        )

    def of_number(self, phone: str) -> list[DncSync]:
        """Every environment the number is synced to, in environment-name order."""
        partition = keys.dnc_partition(self._hasher.fingerprint(phone))
        return [
            _sync(phone, str(item["environment"]), item)
            for item in self._table.query_prefix(partition, keys.DNC_ENVIRONMENT_PREFIX)
        ]


class DncCallLog:
    """How many answers with failed records a call's content has had in an environment."""

    def __init__(
        self,
        table: DynamoTable,
        clock: Callable[[], float] = time.time,
        ttl_seconds: int = CALL_LOG_TTL_SECONDS,
    ) -> None:
        self._table = table
        self._clock = clock
        self._ttl_seconds = ttl_seconds

    def answers(self, content_key: str, environment: str) -> int:
        item = self._table.get(keys.dnc_call(content_key, environment))
        return int(item["answers"]) if item else 0

    def record_answer(
        self, content_key: str, environment: str, answers: int, *, applied: int, failed: int
    ) -> bool:
        """Store the count of failed answers so far; never lowers it (False if it would)."""
        now = self._clock()
        return self._table.put(
            {
                **keys.dnc_call(content_key, environment),
                "answers": answers,
                "applied": applied,
                "failed": failed,
                "answered_at": int(now),
                "expires_at": int(now + self._ttl_seconds),
            },
            condition="attribute_not_exists(pk) OR answers < :answers",
            answers=answers,
        )


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _sync(phone: str, environment: str, item: Item) -> DncSync:
    return DncSync(
        phone=phone,
        environment=environment,
        group_id=str(item["group_id"]),
        applied_at=datetime.fromisoformat(str(item["applied_at"])),
        requested_at=datetime.fromisoformat(str(item["requested_at"])),
        source=str(item["source"]),
        reference=str(item["reference"]),
    )
