"""One ticket upsert per SQS batch for every routed message in it.

Tickets are rebuilt from the queued message and the stored routing decision, so a record that
comes back (its ticket chunk failed) makes the same ticket without processing it again, and the
idempotency table never holds message text. The outcome is a step of each message's consumer
audit record, written with the rest of it after the batch.
"""

from __future__ import annotations

from cxone_relay.platform.consumer import Processed
from cxone_relay.platform.cxone.client import iso_milliseconds
from cxone_relay.platform.observability import count
from cxone_relay.platform.ticketing import Ticket, TicketingClient
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.inbound_sms.models import InboundOutcome, QueuedInboundSms, Routing

InboundProcessed = Processed[QueuedInboundSms, InboundOutcome]


def ticket_for(message: QueuedInboundSms, routing: Routing) -> Ticket:
    return Ticket(
        id=f"sms-{message.id}",
        external_id=message.id,
        subject=f"SMS: {routing.category} ({routing.language})",
        description=message.body,
        created_at=iso_milliseconds(message.timestamp),
        channel="sms",
        category=routing.category,
        queue=routing.queue,
        language=routing.language,
        keywords=routing.keywords,
    )


class TicketExport:
    def __init__(self, ticketing: TicketingClient) -> None:
        self._ticketing = ticketing

    def upsert(self, completed: dict[str, InboundProcessed], budget: TimeBudget) -> dict[str, Exception]:
        """Returns the SQS message ids whose tickets did not land, with why, so only those
        records come back (or go to the DLQ, if the ticketing system refused them)."""
        # The same message can arrive twice in one batch (published twice, then redelivered):
        # upsert its ticket once, and fail or succeed every record that carried it.
        records_of: dict[str, list[str]] = {}
        tickets: list[Ticket] = []
        for record_id, processed in completed.items():
            routing = processed.outcome.routing
            if routing is None:
                continue
            ticket = ticket_for(processed.message, routing)
            if ticket.id not in records_of:
                tickets.append(ticket)
            records_of.setdefault(ticket.id, []).append(record_id)
        if not tickets:
            return {}
        failed: dict[str, Exception] = {}
        for chunk in self._ticketing.batch_upsert(tickets, budget):
            for ticket in chunk.tickets:
                # Every record that carried the message shares its one audit record.
                audit = completed[records_of[ticket.id][0]].audit
                if chunk.error is None:
                    audit.add("ticket_upserted", "ok", ticket=ticket.id)
                else:
                    failed.update(dict.fromkeys(records_of[ticket.id], chunk.error))
                    audit.add(
                        "ticketing_failed",
                        "retry" if chunk.error.retryable else "permanent_failure",
                        reason=str(chunk.error),
                    )
            if chunk.ok:
                count("TicketsUpserted", value=len(chunk.tickets))
        return failed
