"""The dtmf consumer: send each request's digits to its CXone agent session, once, in time.

Each request ends in one of four outcomes, audited with the full payload (timestamp, interaction,
digits, timeout, sequence matrix key, node transition flag, latency, CXone status and response,
validation result), which then also goes to the audit webhook when one is configured:
- sent: CXone took the digits. Latency, from API accept to CXone's answer, is measured here.
- session_ended: CXone no longer knows the session (the call ended); tried once, final.
- expired: the request's timeout_ms ran out before it could be sent, or while CXone throttled or
  failed (429, 5xx) through every retry that fitted inside it. Digits that reach a call after its
  IVR has moved on act on the wrong node, so a late request is never sent; and a redelivery
  (after the queue's visibility timeout) would always be late.
- refused: CXone refused the request itself (another 4xx); tried once, audited, and the consumer
  dead-letters it with the reason.
Anything else (credentials refused, a bug) is audited and raised, so the record comes back and is
then audited as expired.

The outcome record is written as soon as the request is settled, on its own: it is the payload
the audit webhook sends, and the compliance record of digits played into a call. Failures that
send the record back are steps of its consumer stage record, written after the batch.

Each send carries Idempotency-Key `<request id>:send-dtmf`, and the SQS consumer runs each request
id once (Powertools idempotency), so a redelivered request is not sent again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cxone_relay.platform.consumer import SqsConsumer
from cxone_relay.platform.cxone.client import CxoneClient
from cxone_relay.platform.cxone.models import DtmfRequest
from cxone_relay.platform.data.audit import AuditEvent, AuditSubject, AuditTrail, StageRecord
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.observability import count, logger, metrics
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.dtmf.intake import WORKFLOW
from cxone_relay.workflows.dtmf.models import DtmfOutcome, QueuedDtmf
from cxone_relay.workflows.dtmf.rules import latency_ms, seconds_left
from cxone_relay.workflows.dtmf.webhook import WebhookOutbox

# CXone's answer is kept in the audit as it came, unless it is larger than this.
MAX_RESPONSE_CHARS = 2048


class DtmfProcessor:
    def __init__(
        self,
        cxone: CxoneClient,
        audit: AuditTrail,
        outbox: WebhookOutbox,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cxone = cxone
        self._audit = audit
        self._outbox = outbox
        self._clock = clock

    def process(self, message: QueuedDtmf, audit: StageRecord, budget: TimeBudget) -> DtmfOutcome:
        if seconds_left(message.deadline, self._clock()) <= 0:
            return self._final(message, "expired", reason="its timeout passed before it could be sent")
        try:
            result = self._cxone.send_dtmf(
                DtmfRequest(
                    session_id=message.interaction_id,
                    sequence=message.digits,
                    tone_duration_ms=message.tone_duration_ms,
                    tone_spacing_ms=message.tone_spacing_ms,
                ),
                idempotency_key=f"{message.id}:send-dtmf",
                budget=self._within_timeout(message, budget),
            )
        except UpstreamError as exc:
            return self._upstream_failed(message, exc, audit)
        except Exception as exc:
            audit.add("processing_failed", "retry", reason=f"{type(exc).__name__}: {exc}")
            raise
        if result.session_ended:
            return self._final(
                message,
                "session_ended",
                reason="CXone does not know the agent session: the call has ended",
                cxone_status=result.status,
                cxone_response=result.response,
            )
        latency = latency_ms(message.accepted_at.timestamp(), self._clock())
        count("DtmfSent")
        metrics.add_metric(name="DtmfLatency", unit=MetricUnit.Milliseconds, value=latency)
        return self._final(
            message, "sent", cxone_status=result.status, cxone_response=result.response, latency=latency
        )

    def _within_timeout(self, message: QueuedDtmf, budget: TimeBudget) -> TimeBudget:
        """Retries stop at the request's deadline, or the invocation's, whichever comes first."""
        return TimeBudget(
            lambda: min(budget.usable_seconds(), seconds_left(message.deadline, self._clock())),
            reserve_seconds=0.0,
        )

    def _upstream_failed(self, message: QueuedDtmf, exc: UpstreamError, audit: StageRecord) -> DtmfOutcome:
        errors = {"errors": exc.details}  # kept as field and code only (_bounded)
        if exc.retryable:
            # Retried for as long as the request's timeout (or the invocation) allowed; a redelivery
            # would come after the queue's visibility timeout, far past any timeout_ms.
            return self._final(
                message, "expired", reason=str(exc), cxone_status=exc.status, cxone_response=errors
            )
        if exc.refuses_the_record:
            self._final(message, "refused", reason=str(exc), cxone_status=exc.status, cxone_response=errors)
            raise exc  # the consumer dead-letters it with the reason
        audit.add("cxone_failed", "retry", reason=str(exc), cxone_status=exc.status)
        raise exc

    def _final(
        self,
        message: QueuedDtmf,
        outcome: str,
        *,
        reason: str | None = None,
        cxone_status: int | None = None,
        cxone_response: dict[str, Any] | None = None,
        latency: float | None = None,
    ) -> DtmfOutcome:
        payload = audit_payload(
            message,
            outcome=outcome,
            now=self._clock(),
            cxone_status=cxone_status,
            cxone_response=cxone_response,
            latency=latency,
        )
        sent = outcome == "sent"
        self._audit.record(
            AuditEvent(
                WORKFLOW,
                message.id,
                "dtmf_sent" if sent else "dtmf_not_sent",
                "ok" if sent else outcome,
                reason=reason,
                details=payload,
                correlation_id=message.correlation_id,
            )
        )
        self._outbox.add(message, payload)
        if not sent:
            count("DtmfFailed", reason=outcome)
        (logger.info if sent else logger.warning)(
            "dtmf request done",
            extra={
                "request_id": message.id,
                "interaction_id": message.interaction_id,
                "outcome": outcome,
                "cxone_status": cxone_status,
                "latency_ms": latency,
                "digit_count": len(message.digits),
            },
        )
        return DtmfOutcome(id=message.id, status=outcome, cxone_status=cxone_status, latency_ms=latency)


def audit_subject(message: QueuedDtmf) -> AuditSubject:
    """Who a request's consumer audit record is about (no number: a request carries none)."""
    return AuditSubject(message.id, correlation_id=message.correlation_id)


def audit_payload(
    message: QueuedDtmf,
    *,
    outcome: str,
    now: float,
    cxone_status: int | None,
    cxone_response: dict[str, Any] | None,
    latency: float | None,
) -> dict[str, Any]:
    """The seed design's audit record of one request, as the audit table and webhook receive it."""
    return {
        "request_id": message.id,
        "timestamp": datetime.fromtimestamp(now, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "interaction_id": message.interaction_id,
        "digits": message.digits,
        "timeout_ms": message.timeout_ms,
        "sequence_matrix_key": message.sequence_matrix_key,
        "node_transition_flag": message.node_transition_flag,
        "tone_duration_ms": message.tone_duration_ms,
        "tone_spacing_ms": message.tone_spacing_ms,
        "latency_ms": None if latency is None else round(latency, 1),
        "cxone_status": cxone_status,
        "cxone_response": _bounded(cxone_response or {}),
        "validation_result": "valid",
        "outcome": outcome,
    }


def _bounded(response: dict[str, Any]) -> dict[str, Any]:
    if isinstance(response.get("errors"), list):
        # CXone's field and code only: its free-text message may echo what was sent.
        return {
            "errors": [
                {"field": e.get("field"), "errorCode": e.get("errorCode")}
                for e in response["errors"][:5]
                if isinstance(e, dict)
            ]
        }
    if len(json.dumps(response, default=str)) > MAX_RESPONSE_CHARS:
        return {"omitted": f"larger than {MAX_RESPONSE_CHARS} characters"}
    return response


class DtmfConsumer:
    """The SQS consumer, then the audit webhook for the batch: every send of a batch is made
    before any webhook call."""

    def __init__(
        self,
        consumer: SqsConsumer[QueuedDtmf, DtmfOutcome],
        outbox: WebhookOutbox,
        reserve_seconds: float = 1.0,
    ) -> None:
        self._consumer = consumer
        self._outbox = outbox
        self._reserve = reserve_seconds

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return self._consumer.handle(event, context)
        finally:
            self._outbox.flush(TimeBudget.from_context(context, reserve_seconds=self._reserve))
