"""Delivery status, the queue side: the per-message state machine, and final statuses passed on
to CXone and to the send's webhookUrl.

The consumer applies each report to the message's status, which only moves forward
(queued < sent < delivered | undelivered | failed): a duplicate or an out-of-order regression is
audited and changes nothing, an unknown message id is audited and counted. A final status goes to
CXone (`PUT .../messages/{id}/status`: delivered, or failed for undelivered and failed) and, when
the send named one, to its webhookUrl, signed the same way; each is remembered once done, so a
report retried after a failure passes on only what had not gone yet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cxone_relay.platform.cxone.client import CxoneClient
from cxone_relay.platform.cxone.models import StatusUpdate
from cxone_relay.platform.data.audit import AuditEvent, AuditSubject, AuditTrail, StageRecord
from cxone_relay.platform.data.messages import (
    FINAL,
    MessageRecord,
    MessageStatus,
    MessageStatusStore,
    Transition,
    iso,
)
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.observability import count, logger, metrics
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.platform.transport import RetryingHttp, TimeBudget
from cxone_relay.workflows.outbound_sms.delivery import WORKFLOW
from cxone_relay.workflows.outbound_sms.models import QueuedStatus, StatusOutcome
from cxone_relay.workflows.outbound_sms.signatures import HEADER, sign

# What CXone's status endpoint takes (delivered | seen | failed) for each final channel status.
CXONE_STATUS = {
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.UNDELIVERED: "failed",
    MessageStatus.FAILED: "failed",
}


class StatusWebhook:
    """POSTs a final status to a send's webhookUrl, signed like the reports we receive."""

    def __init__(
        self, http: RetryingHttp, secrets: Callable[[], Sequence[str]], clock: Callable[[], float] = time.time
    ) -> None:
        self._http = http
        self._secrets = secrets
        self._clock = clock

    def post(self, url: str, payload: dict[str, Any], budget: TimeBudget) -> int:
        body = json.dumps(payload, separators=(",", ":")).encode()
        secret = next(iter(self._secrets()), None)
        if secret is None:
            raise UpstreamError("status-webhook", "no webhook secret to sign with")
        response = self._http.request(
            "POST",
            url,
            budget,
            headers={HEADER: sign(secret, body, int(self._clock())), "Content-Type": "application/json"},
            data=body,  # type: ignore[arg-type]
            idempotency_key=f"{payload['messageId']}:{payload['status']}",
        )
        return response.status_code


class StatusProcessor:
    def __init__(
        self,
        statuses: MessageStatusStore,
        cxone: CxoneClient,
        webhook: StatusWebhook,
        audit: AuditTrail,
        hasher: PhoneHasher,
    ) -> None:
        self._statuses = statuses
        self._cxone = cxone
        self._webhook = webhook
        self._audit = audit
        self._hasher = hasher

    def process(self, report: QueuedStatus, audit: StageRecord, budget: TimeBudget) -> StatusOutcome:
        status = MessageStatus(report.status)
        record = self._statuses.get(report.message_id)
        if record is None or record.recipient_hash != self._hasher.fingerprint(report.to):
            # Not one of ours, or not to this number: nothing of ours may change because of it.
            why = "unknown message id" if record is None else "the message went to another number"
            count("DeliveryReportsUnknown")
            self._record(report, "unknown_message", "ignored", reason=why)
            logger.warning(
                "delivery report for an unknown message",
                extra={"message_id": report.message_id, "reason": why},
            )
            return StatusOutcome(id=report.id, transition=Transition.UNKNOWN.value)
        transition, current = self._statuses.advance(
            report.message_id, status, iso(report.timestamp), reason=report.error
        )
        current = current or record
        if transition is Transition.APPLIED:
            self._record(report, "status_updated", status.value, previous=record.status.value)
            if status is MessageStatus.DELIVERED:
                self._latency(report, current)
        else:
            count("DeliveryReportsIgnored", reason=transition.value)
            self._record(report, f"status_{transition.value}", "ignored", current=current.status.value)
        if current.status in FINAL and current.status == status:
            # Also after a duplicate: a retried report finishes what a failed attempt left undone.
            self._pass_on(report, current, budget)
        return StatusOutcome(id=report.id, transition=transition.value, status=current.status.value)

    def _latency(self, report: QueuedStatus, record: MessageRecord) -> None:
        if record.sent_at is None:
            return
        sent = datetime.fromisoformat(record.sent_at)  # Python 3.11 reads the Z
        latency = max(0.0, (report.timestamp - sent).total_seconds() * 1000)
        metrics.add_metric(name="DeliveryLatency", unit=MetricUnit.Milliseconds, value=latency)

    def _pass_on(self, report: QueuedStatus, record: MessageRecord, budget: TimeBudget) -> None:
        status = record.status
        if status in CXONE_STATUS and record.forwarded_to_cxone != status.value:
            try:
                self._cxone.update_message_status(
                    StatusUpdate(
                        external_id=record.cxone_external_id or record.message_id,
                        status=CXONE_STATUS[status],  # type: ignore[arg-type]
                        updated_at=report.timestamp,
                        reason=report.error,
                    ),
                    idempotency_key=f"{record.message_id}:status:{status.value}",
                    budget=budget,
                )
            except UpstreamError as exc:
                self._record(
                    report,
                    "cxone_status_failed",
                    "retry" if exc.retryable else "permanent_failure",
                    reason=str(exc),
                )
                raise
            self._statuses.mark_forwarded(record.message_id, "cxone", status)
            count("StatusesForwarded", destination="cxone")
            self._record(report, "cxone_status_updated", CXONE_STATUS[status])
        if record.webhook_url and record.forwarded_to_webhook != status.value:
            payload = {
                "messageId": record.message_id,
                "campaignId": record.campaign_id,
                "status": status.value,
                "to": report.to,
                "timestamp": iso(report.timestamp),
            }
            if report.error:
                payload["error"] = report.error
            try:
                answer = self._webhook.post(record.webhook_url, payload, budget)
            except UpstreamError as exc:
                # The client's receiver is down or refusing: audited and counted, and the report
                # stays done (CXone has the status; the audit keeps the payload's facts).
                count("StatusWebhookFailed")
                self._record(report, "status_webhook_failed", "failed", reason=str(exc))
                return
            self._statuses.mark_forwarded(record.message_id, "webhook", status)
            count("StatusesForwarded", destination="webhook")
            self._record(report, "status_webhook_delivered", "ok", status=answer)

    def _record(
        self, report: QueuedStatus, action: str, outcome: str, reason: str | None = None, **details: Any
    ) -> None:
        self._audit.record(
            AuditEvent(
                WORKFLOW,
                report.message_id,
                action,
                outcome,
                reason=reason,
                phone=report.to,
                details={"reported": report.status, "timestamp": iso(report.timestamp), **details},
                correlation_id=report.correlation_id,
            )
        )


def audit_subject(report: QueuedStatus) -> AuditSubject:
    """Who a report's consumer audit record is about: the message it reports on, and its recipient."""
    return AuditSubject(report.message_id, phone=report.to, correlation_id=report.correlation_id)
