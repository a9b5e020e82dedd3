"""Held messages go out when their window opens: a sweep, every minute on its schedule, queues
every message filed under a minute that has come, then forgets it.

Why a sweep over the state table and not SQS delays or one-off schedules: SQS delays stop at 15
minutes and a message may be held for days (a weekend, a time zone that never shares the window);
a partition per minute is read in order and never scanned. A checkpoint says which minute the
sweep has finished, so a sweep that did not run (an outage, a deploy) is made up by the next one,
minute by minute, with nothing skipped; a lease keeps two runs from sweeping at once. Queue first,
then delete: a crash between the two queues the message again, and the consumer sends each id once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cxone_relay.platform.data.audit import AuditEvent, AuditTrail
from cxone_relay.platform.data.checkpoints import CheckpointStore
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.data.messages import HeldMessages, MessageStatus, MessageStatusStore, minute_of
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.outbound_sms.intake import WORKFLOW

CHECKPOINT = "held-release"
LEASE_PURPOSE = "held-release"
MINUTE = timedelta(minutes=1)
MINUTE_FORMAT = "%Y-%m-%dT%H:%M"


class HeldRelease:
    def __init__(
        self,
        held: HeldMessages,
        statuses: MessageStatusStore,
        publisher: QueuePublisher,
        checkpoints: CheckpointStore,
        lease: Callable[[float], Lease],
        audit: AuditTrail,
        lookback: timedelta,
        minute_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._held = held
        self._statuses = statuses
        self._publisher = publisher
        self._checkpoints = checkpoints
        self._lease = lease
        self._audit = audit
        self._lookback = lookback
        self._minute_seconds = minute_seconds
        self._clock = clock

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        budget = TimeBudget.from_context(context)
        lease = self._lease(budget.usable_seconds() + 30)
        if not lease.acquire(CHECKPOINT):
            count("HeldReleaseSkipped")
            return {"outcome": "skipped"}
        try:
            return self._sweep(budget)
        finally:
            lease.release(CHECKPOINT)

    def _sweep(self, budget: TimeBudget) -> dict[str, Any]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        checkpoint = self._checkpoints.load(CHECKPOINT)
        if checkpoint is None:
            swept, version = now - self._lookback, 0
        else:
            swept, version = (
                datetime.strptime(checkpoint.position, MINUTE_FORMAT).replace(tzinfo=UTC),
                checkpoint.version,
            )
        minute, released, minutes = swept + MINUTE, 0, 0
        outcome = "completed"
        while minute_of(minute) <= minute_of(now):
            if budget.usable_seconds() < self._minute_seconds:
                outcome = "incomplete"
                break
            released_now, waiting = self._release_minute(minute_of(minute), now)
            released += released_now
            if waiting:  # messages due later in this very minute: it is not finished
                break
            saved = self._checkpoints.save(CHECKPOINT, minute_of(minute), (), expected_version=version)
            if saved is None:
                outcome = "superseded"
                break
            version, minutes, minute = saved.version, minutes + 1, minute + MINUTE
        result = {
            "outcome": outcome,
            "released": released,
            "minutes": minutes,
            "checkpoint": minute_of(minute - MINUTE),
        }
        logger.info("held messages swept", extra=result)
        return result

    def _release_minute(self, minute: str, now: datetime) -> tuple[int, bool]:
        """(how many were released, whether any is still waiting) for one minute's partition.
        Its messages come in message-id order, not by time: one not yet due is passed over."""
        released, waiting = 0, False
        for held in self._held.due_in(minute):
            if datetime.fromisoformat(held.send_after) > now:
                waiting = True
                continue
            message = held.message
            self._statuses.set_pending(held.message_id, MessageStatus.QUEUED, None)
            self._publisher.publish(message, correlation_id=message.get("correlation_id"))
            self._held.release(minute, held.message_id)
            released += 1
            count("HeldReleased")
            self._audit.record(
                AuditEvent(
                    WORKFLOW,
                    held.message_id,
                    "released",
                    "queued",
                    phone=str(message.get("to") or "") or None,
                    details={"send_after": held.send_after, "campaign_id": message.get("campaign_id")},
                    correlation_id=message.get("correlation_id"),
                )
            )
        return released, waiting
