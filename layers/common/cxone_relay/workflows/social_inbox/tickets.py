"""Tickets for pulled conversations: upserted by external id (the contact id), in chunks of at
most 50, one call per chunk.

A chunk the ticketing system refuses outright (a 4xx) is retried ticket by ticket, so one bad
ticket cannot hold back the 49 beside it; a ticket refused on its own is audited and passed over.
A chunk that fails for a passing reason (throttling, an outage) stops the upserts, and the run,
where they are: the next run takes those conversations again, and nothing after them was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cxone_relay.platform.cxone.client import iso_milliseconds
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.observability import count
from cxone_relay.platform.ticketing import Ticket, TicketingClient
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.social_inbox.models import Classification, Conversation

TICKET_ID_PREFIX = "social-"


class TicketResult(StrEnum):
    UPSERTED = "upserted"
    REFUSED = "refused"  # the ticketing system will never take it: audited, passed over
    FAILED = "failed"  # may yet succeed: the run stops before it


@dataclass(frozen=True)
class TicketOutcome:
    result: TicketResult
    error: UpstreamError | None = None


def ticket_for(conversation: Conversation, classification: Classification) -> Ticket:
    channel = conversation.channel or "social"
    return Ticket(
        id=f"{TICKET_ID_PREFIX}{conversation.id}",
        external_id=conversation.id,
        subject=conversation.subject or f"{channel} conversation {conversation.id}",
        description=conversation.text,
        created_at=iso_milliseconds(conversation.created_at),
        channel=channel,
        language=classification.language,
        keywords=list(classification.keywords),
        priority=classification.priority.value,
        sentiment_score=classification.sentiment_score,
    )


class TicketExport:
    def __init__(self, ticketing: TicketingClient) -> None:
        self._ticketing = ticketing

    def upsert(self, tickets: list[Ticket], budget: TimeBudget) -> list[TicketOutcome]:
        """Outcomes in the order given, up to and including the first that failed for a passing
        reason: nothing after it is sent, so the next run's retry upserts each ticket once."""
        outcomes: list[TicketOutcome] = []
        size = self._ticketing.chunk_size
        for start in range(0, len(tickets), size):
            chunk = tickets[start : start + size]
            [result] = self._ticketing.batch_upsert(chunk, budget)
            if result.error is None:
                count("TicketsUpserted", value=len(chunk))
                outcomes.extend(TicketOutcome(TicketResult.UPSERTED) for _ in chunk)
            elif result.error.retryable:
                outcomes.append(TicketOutcome(TicketResult.FAILED, result.error))
            else:
                outcomes.extend(self._one_by_one(chunk, budget))
            if outcomes[-1].result is TicketResult.FAILED:
                break
        return outcomes

    def _one_by_one(self, tickets: list[Ticket], budget: TimeBudget) -> list[TicketOutcome]:
        outcomes = []
        for ticket in tickets:
            [alone] = self._ticketing.batch_upsert([ticket], budget)
            if alone.error is None:
                count("TicketsUpserted")
                outcomes.append(TicketOutcome(TicketResult.UPSERTED))
            elif alone.error.retryable:
                outcomes.append(TicketOutcome(TicketResult.FAILED, alone.error))
                break
            else:
                outcomes.append(TicketOutcome(TicketResult.REFUSED, alone.error))
        return outcomes
