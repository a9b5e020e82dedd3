"""The inbound-sms consumer: act on keywords, or route and store the message in CXone; then one
ticket upsert for the whole batch.

Every CXone write carries an idempotency key derived from the message id, so a redelivered
message neither stores twice nor replies twice. Audit per message: received, the routing or
keyword decision, the CXone result, and (at batch level) the ticket result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from cxone_relay.audit import AuditEvent, AuditWriter
from cxone_relay.consent import ConsentChange, ConsentLedger, ConsentStatus
from cxone_relay.cxone.client import CxoneClient
from cxone_relay.errors import UpstreamError
from cxone_relay.inbound.keywords import KeywordAction
from cxone_relay.inbound.models import QueuedInboundSms
from cxone_relay.inbound.routing import CategoryRules, QueueRouter
from cxone_relay.language import LanguageDetector
from cxone_relay.observability import count, logger
from cxone_relay.queueing import QueuePublisher
from cxone_relay.ticketing import TicketingClient
from cxone_relay.transport import TimeBudget

WORKFLOW = "inbound-sms"


def _iso_ms(message: QueuedInboundSms) -> str:
    return message.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class InboundProcessor:
    def __init__(
        self,
        cxone: CxoneClient,
        ledger: ConsentLedger,
        audit: AuditWriter,
        opt_outs: QueuePublisher,
        detector: LanguageDetector,
        categories: CategoryRules,
        router: QueueRouter,
        ticketing: TicketingClient,
        replies: dict[KeywordAction, str],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._cxone = cxone
        self._ledger = ledger
        self._audit = audit
        self._opt_outs = opt_outs
        self._detector = detector
        self._categories = categories
        self._router = router
        self._ticketing = ticketing
        self._replies = replies
        self._clock = clock

    # One message ---------------------------------------------------------------------------

    def process(self, body: dict[str, Any], budget: TimeBudget) -> dict[str, Any]:
        message = QueuedInboundSms.model_validate(body)
        events = [self._event(message, "received", "ok")]
        try:
            if message.keyword:
                return self._act_on_keyword(message, KeywordAction(message.keyword), events, budget)
            return self._route_and_store(message, events, budget)
        except UpstreamError as exc:
            events.append(
                self._event(
                    message,
                    f"{exc.service}_failed",
                    "retry" if exc.retryable else "permanent_failure",
                    reason=str(exc),
                    # CXone's field and code only: its free-text message may echo the number.
                    details={
                        "status": exc.status,
                        "errors": [
                            {"field": e.get("field"), "errorCode": e.get("errorCode")}
                            for e in exc.details[:5]
                        ],
                    },
                )
            )
            logger.warning(
                "inbound message not completed",
                extra={"message_id": message.id, "retryable": exc.retryable, "status": exc.status},
            )
            raise
        finally:
            self._audit.record_many(events)

    def _route_and_store(
        self, message: QueuedInboundSms, events: list[AuditEvent], budget: TimeBudget
    ) -> dict[str, Any]:
        guess = self._detector.detect(message.body)
        category = self._categories.categorise(message.body)
        queue = self._router.queue_for(guess.language, category.name)
        events.append(
            self._event(
                message,
                "routed",
                "ok",
                details={
                    "category": category.name,
                    "keywords": list(category.keywords),
                    "language": guess.language,
                    "language_confidence": round(guess.confidence, 3),
                    "language_fallback": guess.fell_back,
                    "queue": queue,
                },
            )
        )
        count("MessagesRouted", category=category.name, language=guess.language)
        stored = self._cxone.store_inbound_message(
            {
                "idOnExternalPlatform": message.id,
                "direction": "inbound",
                "createdAtWithMilliseconds": _iso_ms(message),
                "thread": {"idOnExternalPlatform": message.sender},
                "messageContent": {"type": "TEXT", "payload": {"text": message.body}},
                "authorEndUserIdentity": {"idOnExternalPlatform": message.sender},
                "routingQueueId": queue,
            },
            idempotency_key=f"{message.id}:store",
            budget=budget,
        )
        events.append(self._event(message, "cxone_stored", "ok", details={"cxone_id": stored.get("id")}))
        ticket = {
            "id": f"sms-{message.id}",
            "external_id": message.id,
            "subject": f"SMS: {category.name} ({guess.language})",
            "description": message.body,
            "status": "open",
            "created_at": _iso_ms(message),
            "channel": "sms",
            "category": category.name,
            "queue": queue,
            "language": guess.language,
            "keywords": list(category.keywords),
        }
        return {"id": message.id, "action": "routed", "ticket": ticket}

    def _act_on_keyword(
        self, message: QueuedInboundSms, action: KeywordAction, events: list[AuditEvent], budget: TimeBudget
    ) -> dict[str, Any]:
        # Consent first: it is the compliance record, and must stand even if the reply fails.
        if action in (KeywordAction.OPT_OUT, KeywordAction.OPT_IN):
            status = ConsentStatus.OPTED_OUT if action is KeywordAction.OPT_OUT else ConsentStatus.OPTED_IN
            applied = self._ledger.record(
                ConsentChange(message.sender, status, "sms", message.id, message.timestamp)
            )
            if not applied:
                # A newer change already stands (a STOP delivered after the START that followed
                # it): confirming or syncing this one would contradict the customer's latest word.
                events.append(self._event(message, "consent_superseded", status.value))
                return {"id": message.id, "action": f"keyword:{action.value}:superseded", "ticket": None}
            events.append(self._event(message, "consent_updated", status.value))
        if action is KeywordAction.OPT_OUT:
            # The DNC sync consumer dedupes numbers, so a redelivery re-publishing is harmless.
            self._opt_outs.publish(
                {
                    "phone": message.sender,
                    "source": "sms",
                    "reference": message.id,
                    "requested_at": _iso_ms(message),
                },
                correlation_id=message.correlation_id,
            )
            events.append(self._event(message, "opt_out_queued", "ok"))
        self._cxone.send_outbound(
            {
                "thread": {"idOnExternalPlatform": message.sender},
                "messageContent": {"type": "TEXT", "payload": {"text": self._replies[action]}},
                "recipients": [{"idOnExternalPlatform": message.sender, "isPrimary": True}],
            },
            idempotency_key=f"{message.id}:reply:{action.value}",
            budget=budget,
        )
        events.append(self._event(message, "reply_sent", "ok", details={"keyword": action.value}))
        count("KeywordActions", action=action.value)
        return {"id": message.id, "action": f"keyword:{action.value}", "ticket": None}

    def audit_malformed(self, sqs_message_id: str, body: str, error: Exception) -> None:
        """A queue record that can never be processed: audit it (without its content, which may
        hold a number) so its trip to the DLQ is explained."""
        try:
            parsed = json.loads(body)
            subject = str(parsed.get("id") or "") if isinstance(parsed, dict) else ""
        except ValueError:
            subject = ""
        self._audit.record(
            AuditEvent(
                WORKFLOW,
                subject[:128] or f"sqs-{sqs_message_id}",
                "malformed_message",
                "permanent_failure",
                reason=type(error).__name__,
                details={"sqs_message_id": sqs_message_id},
            )
        )
        logger.error("malformed inbound queue message", extra={"sqs_message_id": sqs_message_id})

    # The whole batch -----------------------------------------------------------------------

    def upsert_tickets(self, results: dict[str, dict[str, Any]], budget: TimeBudget) -> set[str]:
        """One batch upsert for every routed message of the batch; returns the SQS message ids
        whose tickets did not land, so only those records come back."""
        # The same message can arrive twice in one batch (published twice, then redelivered):
        # upsert its ticket once, and fail or succeed every record that carried it.
        records_of: dict[str, list[str]] = {}
        tickets: list[dict[str, Any]] = []
        for record_id, result in results.items():
            ticket = result.get("ticket")
            if ticket:
                if ticket["id"] not in records_of:
                    tickets.append(ticket)
                records_of.setdefault(ticket["id"], []).append(record_id)
        if not tickets:
            return set()
        failed: set[str] = set()
        events: list[AuditEvent] = []
        for chunk in self._ticketing.batch_upsert(tickets, budget):
            for ticket_id in chunk.ticket_ids:
                subject = ticket_id.removeprefix("sms-")
                if chunk.error is None:
                    events.append(
                        AuditEvent(WORKFLOW, subject, "ticket_upserted", "ok", details={"ticket": ticket_id})
                    )
                else:
                    failed.update(records_of[ticket_id])
                    events.append(
                        AuditEvent(
                            WORKFLOW,
                            subject,
                            "ticketing_failed",
                            "retry" if chunk.error.retryable else "permanent_failure",
                            reason=str(chunk.error),
                        )
                    )
            if chunk.ok:
                count("TicketsUpserted", value=len(chunk.ticket_ids))
        self._audit.record_many(events)
        return failed

    def _event(
        self,
        message: QueuedInboundSms,
        action: str,
        outcome: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            workflow=WORKFLOW,
            subject=message.id,
            action=action,
            outcome=outcome,
            reason=reason,
            phone=message.sender,
            details=details or {},
            correlation_id=message.correlation_id,
        )
