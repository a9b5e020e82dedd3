"""The audit webhook: each request's audit payload, POSTed to a configured URL once the batch's
DTMF sends are done.

Why deferred to the end of the batch: DTMF is time-critical, and a slow or unreachable webhook
must never hold up a send, neither the record's own nor the next record's in the batch. The
payload is in the audit table before the webhook is tried, so a webhook failure loses nothing: it
is retried a few times (short timeouts, bounded for the whole batch), then audited on its own and
counted (DtmfAuditWebhookFailed), and the record stays done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cxone_relay.platform.data.audit import AuditEvent, AuditTrail
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.redaction import redact
from cxone_relay.platform.transport import RetryingHttp, TimeBudget
from cxone_relay.workflows.dtmf.intake import WORKFLOW
from cxone_relay.workflows.dtmf.models import QueuedDtmf


def capped(budget: TimeBudget, seconds: float, clock: Callable[[], float] = time.monotonic) -> TimeBudget:
    """A budget that ends `seconds` from now, or when `budget` does if that is sooner."""
    ends = clock() + seconds
    return TimeBudget(lambda: min(budget.usable_seconds(), ends - clock()), reserve_seconds=0.0)


class AuditWebhook:
    def __init__(self, url: str, http: RetryingHttp) -> None:
        self.url = url
        self._http = http

    def post(self, payload: dict[str, Any], budget: TimeBudget) -> int:
        """POST one payload; the request id as Idempotency-Key lets the receiver drop a repeat."""
        response = self._http.request(
            "POST", self.url, budget, json=payload, idempotency_key=str(payload["request_id"])
        )
        return response.status_code


class WebhookOutbox:
    """Payloads waiting for the webhook until the batch's sends are done."""

    def __init__(
        self,
        webhook: AuditWebhook | None,
        audit: AuditTrail,
        batch_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._webhook = webhook
        self._audit = audit
        self._batch_seconds = batch_seconds
        self._monotonic = monotonic
        self._pending: list[tuple[QueuedDtmf, dict[str, Any]]] = []

    def add(self, message: QueuedDtmf, payload: dict[str, Any]) -> None:
        if self._webhook is not None:
            # Redacted as the audit table redacts it, so both hold the same record.
            self._pending.append((message, redact(payload)))

    def flush(self, budget: TimeBudget) -> None:
        """Try every waiting payload; never raises. Once one has failed every attempt, the rest of
        the batch is not tried (the webhook is down) and is audited as not delivered."""
        pending, self._pending = self._pending, []
        if self._webhook is None or not pending:
            return
        allowance = capped(budget, self._batch_seconds, self._monotonic)
        down: str | None = None
        events = []
        for message, payload in pending:
            if down is not None:
                events.append(self._failed(message, f"not tried: the webhook failed earlier ({down})"))
                continue
            try:
                status = self._webhook.post(payload, allowance)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, UpstreamError) else type(exc).__name__
                down = reason
                events.append(self._failed(message, reason))
                continue
            events.append(
                AuditEvent(
                    WORKFLOW,
                    message.id,
                    "audit_webhook_delivered",
                    "ok",
                    details={"status": status},
                    correlation_id=message.correlation_id,
                )
            )
        try:
            self._audit.record_many(events)
        except Exception:
            logger.exception("could not audit the dtmf audit webhook's results")

    def _failed(self, message: QueuedDtmf, reason: str) -> AuditEvent:
        count("DtmfAuditWebhookFailed")
        logger.warning("dtmf audit webhook not delivered", extra={"request_id": message.id, "reason": reason})
        return AuditEvent(
            WORKFLOW,
            message.id,
            "audit_webhook_failed",
            "failed",
            reason=reason,
            correlation_id=message.correlation_id,
        )
