"""Ticket batch upserts against the ticketing simulator: chunks of at most 50, each on its own."""

from __future__ import annotations

from cxone_relay.platform.ticketing import Ticket, TicketingClient
from cxone_relay.platform.transport import RetryingHttp, RetryPolicy, TimeBudget
from tests.conftest import TICKETING_KEY


def tickets(count: int) -> list[Ticket]:
    return [
        Ticket(
            id=f"sms-{n:03d}",
            external_id=f"{n:03d}",
            subject="s",
            description="d",
            created_at="2026-01-01T00:00:00.000Z",
            channel="sms",
        )
        for n in range(count)
    ]


def client(sim, sleeps: list[float]) -> TicketingClient:
    http = RetryingHttp("ticketing", policy=RetryPolicy(max_attempts=2), sleeper=sleeps.append)
    return TicketingClient(sim.url, lambda: TICKETING_KEY, http, chunk_size=50)


def test_120_tickets_are_three_calls_of_at_most_50(ticketing_sim):
    results = client(ticketing_sim, []).batch_upsert(tickets(120), TimeBudget.fixed(30))

    calls = ticketing_sim.requests(path_prefix="/api/v1/tickets/batch_upsert")
    assert [len(call["body"]) for call in calls] == [50, 50, 20]
    assert all(result.ok for result in results)
    assert len(ticketing_sim.tickets()) == 120
    assert len({call["headers"]["idempotency-key"] for call in calls}) == 3


def test_a_failed_chunk_reports_only_its_own_tickets(ticketing_sim):
    ticketing_sim.add_fault(status=503, body_contains='"sms-060"', path_prefix="/api/v1/tickets")
    sleeps: list[float] = []

    results = client(ticketing_sim, sleeps).batch_upsert(tickets(120), TimeBudget.fixed(30))

    assert [result.ok for result in results] == [True, False, True]
    assert [ticket.id for ticket in results[1].tickets] == [f"sms-{n:03d}" for n in range(50, 100)]
    assert results[1].error is not None and results[1].error.retryable
    assert len(sleeps) == 1  # retried once within the policy, then reported
    assert len(ticketing_sim.tickets()) == 70


def test_a_refused_chunk_is_a_permanent_failure(ticketing_sim):
    bad = tickets(3)
    bad[1] = bad[1].model_copy(update={"external_id": ""})  # the ticketing system requires one

    [result] = client(ticketing_sim, []).batch_upsert(bad, TimeBudget.fixed(30))

    assert result.error is not None and not result.error.retryable and result.error.status == 400


def test_the_key_is_asked_for_on_every_batch_so_a_rotation_is_picked_up(ticketing_sim):
    keys = iter(["old-key", TICKETING_KEY])
    http = RetryingHttp("ticketing", policy=RetryPolicy(max_attempts=1))
    rotating = TicketingClient(ticketing_sim.url, lambda: next(keys), http)

    [before] = rotating.batch_upsert(tickets(1), TimeBudget.fixed(30))
    [after] = rotating.batch_upsert(tickets(1), TimeBudget.fixed(30))

    assert before.error is not None and before.error.status == 401
    assert after.ok


def test_the_idempotency_key_follows_the_content_so_a_changed_ticket_is_never_taken_for_a_retry(
    ticketing_sim,
):
    [ticket] = tickets(1)
    upserts = client(ticketing_sim, [])

    upserts.batch_upsert([ticket], TimeBudget.fixed(30))
    upserts.batch_upsert([ticket], TimeBudget.fixed(30))
    upserts.batch_upsert([ticket.model_copy(update={"priority": "HIGH"})], TimeBudget.fixed(30))

    keys = [call["headers"]["idempotency-key"] for call in ticketing_sim.requests(path_prefix="/api")]
    assert keys[0] == keys[1] != keys[2]
    assert ticketing_sim.tickets()[0]["priority"] == "HIGH"
