"""The inbox's ticket export against a ticketing client that answers as scripted: the outcome of
each ticket, in the order given, and where it stops."""

from __future__ import annotations

from cxone_relay.platform.errors import PermanentUpstreamError, RetryableUpstreamError, UpstreamError
from cxone_relay.platform.ticketing import ChunkResult, Ticket
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.social_inbox.tickets import TicketExport, TicketOutcome, TicketResult

REFUSED = PermanentUpstreamError("ticketing", "refused", status=400)
OUTAGE = RetryableUpstreamError("ticketing", "gave up after HTTP 503", status=503)


class ScriptedTicketing:
    """Refuses any call carrying a ticket in `refuse`, else fails any carrying one in `outage`;
    records the external ids of every call."""

    def __init__(self, chunk_size: int, refuse: set[str] = frozenset(), outage: set[str] = frozenset()):
        self.chunk_size = chunk_size
        self.refuse = refuse
        self.outage = outage
        self.calls: list[list[str]] = []

    def batch_upsert(self, tickets: list[Ticket], budget: TimeBudget) -> list[ChunkResult]:
        ids = [ticket.external_id for ticket in tickets]
        self.calls.append(ids)
        error: UpstreamError | None = None
        if self.refuse & set(ids):
            error = REFUSED
        elif self.outage & set(ids):
            error = OUTAGE
        return [ChunkResult(tickets, error)]


def tickets(*ids: str) -> list[Ticket]:
    return [
        Ticket(id=f"social-{i}", external_id=i, subject=i, description="", created_at="", channel="SMS")
        for i in ids
    ]


def budget() -> TimeBudget:
    return TimeBudget.fixed(60.0, lambda: 0.0)


def test_every_ticket_of_an_accepted_chunk_is_upserted():
    ticketing = ScriptedTicketing(chunk_size=2)

    outcomes = TicketExport(ticketing).upsert(tickets("a", "b", "c"), budget())

    assert outcomes == [TicketOutcome(TicketResult.UPSERTED)] * 3
    assert ticketing.calls == [["a", "b"], ["c"]]


def test_a_refused_chunk_is_sent_again_ticket_by_ticket_and_only_the_bad_one_is_refused():
    ticketing = ScriptedTicketing(chunk_size=3, refuse={"b"})

    outcomes = TicketExport(ticketing).upsert(tickets("a", "b", "c", "d"), budget())

    assert outcomes == [
        TicketOutcome(TicketResult.UPSERTED),
        TicketOutcome(TicketResult.REFUSED, REFUSED),
        TicketOutcome(TicketResult.UPSERTED),
        TicketOutcome(TicketResult.UPSERTED),
    ]
    assert ticketing.calls == [["a", "b", "c"], ["a"], ["b"], ["c"], ["d"]]


def test_an_outage_ends_the_export_at_the_ticket_it_met_with_that_error():
    whole_chunk = ScriptedTicketing(chunk_size=2, outage={"c"})
    alone = ScriptedTicketing(chunk_size=3, refuse={"a"}, outage={"b"})

    assert TicketExport(whole_chunk).upsert(tickets("a", "b", "c", "d", "e"), budget()) == [
        TicketOutcome(TicketResult.UPSERTED),
        TicketOutcome(TicketResult.UPSERTED),
        TicketOutcome(TicketResult.FAILED, OUTAGE),
    ]
    assert whole_chunk.calls == [["a", "b"], ["c", "d"]]
    # Retried one by one after the refusal, "b" meets the outage: "c" and the next chunk wait.
    assert TicketExport(alone).upsert(tickets("a", "b", "c", "d"), budget()) == [
        TicketOutcome(TicketResult.REFUSED, REFUSED),
        TicketOutcome(TicketResult.FAILED, OUTAGE),
    ]
    assert alone.calls == [["a", "b", "c"], ["a"], ["b"]]
