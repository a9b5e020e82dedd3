"""The outbound-sms consumer: just before sending, check the gate again, then send each message
through CXone DFO once and record it as sent.

- Consent is read again: an opt-out that arrived while the message was queued or held wins, and
  the message ends `refused` without reaching CXone.
- Quiet hours are checked again: a message that waited in the queue past its window (a backlog,
  an outage) is held again until the window reopens, never sent at night.
- The send carries `Idempotency-Key: <message id>:send`, the same on every retry, and the consumer
  runs each message id once (Powertools idempotency), so a redelivery never sends twice.
- CXone's limit (6,000 sends a minute per tenant) is kept by the queue's concurrency cap and by
  honouring Retry-After (platform transport); a throttled message goes back to the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from cxone_relay.platform.cxone.client import CxoneClient
from cxone_relay.platform.cxone.models import OutboundMessage
from cxone_relay.platform.data.audit import AuditEvent, AuditSubject, AuditTrail, StageRecord
from cxone_relay.platform.data.messages import HeldMessages, MessageStatus, MessageStatusStore, iso
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.observability import count, logger, metrics
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.outbound_sms.intake import WORKFLOW, SendGate
from cxone_relay.workflows.outbound_sms.models import OutboundOutcome, QueuedOutboundSms


class OutboundProcessor:
    def __init__(
        self,
        cxone: CxoneClient,
        gate: SendGate,
        statuses: MessageStatusStore,
        held: HeldMessages,
        audit: AuditTrail,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cxone = cxone
        self._gate = gate
        self._statuses = statuses
        self._held = held
        self._audit = audit
        self._clock = clock

    def process(self, message: QueuedOutboundSms, audit: StageRecord, budget: TimeBudget) -> OutboundOutcome:
        record = self._statuses.get(message.id)
        if record is not None and record.status not in (MessageStatus.QUEUED, MessageStatus.HELD):
            # Sent or final already (a copy of a message that completed): nothing to do again.
            self._record(message, "skipped", "ok", reason=f"already {record.status.value}")
            return OutboundOutcome(id=message.id, status="already")
        now = datetime.fromtimestamp(self._clock(), UTC)
        verdict = self._gate.check(message.to, now)
        if verdict.reasons:
            self._statuses.advance(
                message.id, MessageStatus.REFUSED, iso(now), reason=", ".join(verdict.reasons)
            )
            for reason in verdict.reasons:
                count("OutboundRefused", reason=reason)
            self._record(message, "refused", "refused", reason=", ".join(verdict.reasons))
            logger.info(
                "outbound message refused at send time",
                extra={"message_id": message.id, "reasons": verdict.reasons},
            )
            return OutboundOutcome(id=message.id, status="refused")
        if verdict.held and verdict.send_after is not None:
            send_after = iso(verdict.send_after)
            again = message.model_copy(update={"holds": message.holds + 1})
            self._held.hold(message.id, verdict.send_after, again.model_dump(mode="json"))
            self._statuses.set_pending(message.id, MessageStatus.HELD, send_after)
            count("OutboundHeld")
            self._record(message, "held", "held", send_after=send_after)
            return OutboundOutcome(id=message.id, status="held", send_after=send_after)
        return self._send(message, budget)

    def _send(self, message: QueuedOutboundSms, budget: TimeBudget) -> OutboundOutcome:
        try:
            sent = self._cxone.send_outbound(
                OutboundMessage(thread_id=message.to, text=message.text, recipients=[message.to]),
                idempotency_key=f"{message.id}:send",
                budget=budget,
            )
        except UpstreamError as exc:
            errors = [{"field": e.get("field"), "errorCode": e.get("errorCode")} for e in exc.details[:5]]
            if exc.refuses_the_record:
                at = iso(datetime.fromtimestamp(self._clock(), UTC))
                self._statuses.advance(message.id, MessageStatus.FAILED, at, reason=str(exc))
            self._record(
                message,
                "cxone_failed",
                "permanent_failure" if exc.refuses_the_record else "retry",
                reason=str(exc),
                status=exc.status,
                errors=errors,
            )
            raise  # retried, or (refused by CXone) dead-lettered by the consumer
        at = iso(datetime.fromtimestamp(self._clock(), UTC))
        self._statuses.record_sent(message.id, sent.id, sent.external_id, at)
        self._statuses.advance(message.id, MessageStatus.SENT, at)
        count("OutboundSent")
        metrics.add_metric(name="OutboundSegments", unit=MetricUnit.Count, value=message.segments)
        self._record(message, "sent", "ok", cxone_id=sent.id, segments=message.segments)
        logger.info("outbound message sent", extra={"message_id": message.id, "cxone_id": sent.id})
        return OutboundOutcome(id=message.id, status="sent", cxone_id=sent.id)

    def _record(
        self,
        message: QueuedOutboundSms,
        action: str,
        outcome: str,
        reason: str | None = None,
        **details: object,
    ) -> None:
        self._audit.record(
            AuditEvent(
                WORKFLOW,
                message.id,
                action,
                outcome,
                reason=reason,
                phone=message.to,
                details={
                    "campaign_id": message.campaign_id,
                    **{k: v for k, v in details.items() if v is not None},
                },
                correlation_id=message.correlation_id,
            )
        )


def audit_subject(message: QueuedOutboundSms) -> AuditSubject:
    """Who a send's consumer audit record is about: the message, and its recipient."""
    return AuditSubject(message.id, phone=message.to, correlation_id=message.correlation_id)
