"""The inbound-sms consumer: act on keywords, or route and store the message in CXone; then one
ticket upsert for the whole batch (tickets.py).

Every CXone write carries an idempotency key derived from the message id, so a redelivered
message neither stores twice nor replies twice. Audit per message, as steps of its one consumer
record: received, the routing or keyword decision, and the CXone result (the ticket's follows).
"""

from __future__ import annotations

from cxone_relay.platform.cxone.client import CxoneClient
from cxone_relay.platform.cxone.models import InboundMessage
from cxone_relay.platform.data.audit import StageRecord
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.inbound_sms.keyword_actions import KeywordResponder
from cxone_relay.workflows.inbound_sms.keywords import KeywordAction
from cxone_relay.workflows.inbound_sms.models import InboundOutcome, QueuedInboundSms
from cxone_relay.workflows.inbound_sms.routing import MessageRouter


class InboundProcessor:
    def __init__(self, cxone: CxoneClient, router: MessageRouter, keywords: KeywordResponder) -> None:
        self._cxone = cxone
        self._router = router
        self._keywords = keywords

    def process(self, message: QueuedInboundSms, audit: StageRecord, budget: TimeBudget) -> InboundOutcome:
        audit.add("received", "ok")
        try:
            if message.keyword:
                return self._keywords.respond(message, KeywordAction(message.keyword), audit, budget)
            return self._route_and_store(message, audit, budget)
        except UpstreamError as exc:
            audit.add(
                f"{exc.service}_failed",
                "retry" if exc.retryable else "permanent_failure",
                reason=str(exc),
                status=exc.status,
                # CXone's field and code only: its free-text message may echo the number.
                errors=[{"field": e.get("field"), "errorCode": e.get("errorCode")} for e in exc.details[:5]],
            )
            logger.warning(
                "inbound message not completed",
                extra={"message_id": message.id, "retryable": exc.retryable, "status": exc.status},
            )
            raise
        except Exception as exc:
            # Anything else (a secret with empty fields, a bug) is audited with its reason too,
            # so a record's trip back to the queue or to the DLQ is never unexplained.
            audit.add("processing_failed", "retry", reason=f"{type(exc).__name__}: {exc}")
            raise

    def _route_and_store(
        self, message: QueuedInboundSms, audit: StageRecord, budget: TimeBudget
    ) -> InboundOutcome:
        routing = self._router.route(message.body)
        audit.add("routed", "ok", **routing.model_dump())
        stored = self._cxone.store_inbound_message(
            InboundMessage(
                external_id=message.id,
                thread_id=message.sender,
                author_id=message.sender,
                text=message.body,
                created_at=message.timestamp,
                routing_queue_id=routing.queue,
            ),
            idempotency_key=f"{message.id}:store",
            budget=budget,
        )
        audit.add("cxone_stored", "ok", cxone_id=stored.id, already_stored=stored.already_stored)
        # Counted once per message, when it is in CXone (a retried store does not count again).
        count("MessagesRouted", category=routing.category, language=routing.language)
        return InboundOutcome(id=message.id, action="routed", routing=routing, cxone_id=stored.id)
