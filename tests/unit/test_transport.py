"""The retrying transport against the CXone simulator's fault injection. Nothing sleeps for real:
the sleeper and clocks are fakes, and the budget is measured on the fake clock."""

from __future__ import annotations

import gzip
import json
import random
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import requests

from cxone_relay.platform.errors import PermanentUpstreamError, RetryableUpstreamError, UnauthorizedError
from cxone_relay.platform.transport import (
    IDEMPOTENCY_HEADER,
    RetryingHttp,
    RetryPolicy,
    TimeBudget,
    build_session,
    parse_retry_after,
    response_json,
)
from local.runtime import free_ports

DISCOVERY = "/.well-known/openid-configuration"
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def transport(clock: FakeClock, *, rng=lambda: 1.0, **policy) -> RetryingHttp:
    return RetryingHttp(
        "cxone", policy=RetryPolicy(**policy), sleeper=clock.sleep, rng=rng, wall_clock=lambda: NOW
    )


def budget(clock: FakeClock, seconds: float = 60.0) -> TimeBudget:
    return TimeBudget.fixed(seconds, clock=clock.monotonic)


def test_retry_after_seconds_is_honoured(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=429, retry_after=7, count=2, path_prefix=DISCOVERY)

    response = transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock))

    assert response.status_code == 200
    assert clock.sleeps == [7.0, 7.0]
    assert [r["status"] for r in cxone_sim.requests(path_prefix=DISCOVERY)] == [429, 429, 200]


def test_retry_after_http_date_is_honoured(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(
        status=429, retry_after="Tue, 24 Nov 2026 12:00:09 GMT", count=1, path_prefix=DISCOVERY
    )

    transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock))

    assert clock.sleeps == [9.0]


def test_a_retry_after_beyond_the_cap_gives_up_at_once_as_retryable(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=429, retry_after=3600, count=1, path_prefix=DISCOVERY)

    with pytest.raises(RetryableUpstreamError) as caught:
        transport(clock, max_retry_after=12.0).request("GET", cxone_sim.url + DISCOVERY, budget(clock, 120))

    assert caught.value.status == 429
    assert clock.sleeps == []  # the record goes back to its queue instead of holding the batch
    assert len(cxone_sim.requests(path_prefix=DISCOVERY)) == 1


def test_429_without_retry_after_and_5xx_back_off_exponentially_with_a_cap(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=503, count=3, path_prefix=DISCOVERY)
    cxone_sim.add_fault(status=429, count=2, path_prefix=DISCOVERY)

    transport(clock, base_delay=0.5, max_delay=2.0, max_attempts=6).request(
        "GET", cxone_sim.url + DISCOVERY, budget(clock)
    )

    # rng = 1.0 shows the ceiling of each full-jitter window: 0.5, 1, 2, then capped at 2.
    assert clock.sleeps == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_backoff_is_jittered_within_its_window(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=500, count=4, path_prefix=DISCOVERY)
    rng = random.Random(7).random

    transport(clock, rng=rng, base_delay=1.0, max_delay=4.0).request(
        "GET", cxone_sim.url + DISCOVERY, budget(clock)
    )

    ceilings = [1.0, 2.0, 4.0, 4.0]
    assert len(clock.sleeps) == 4
    assert all(0 <= slept <= ceiling for slept, ceiling in zip(clock.sleeps, ceilings, strict=True))
    assert len(set(clock.sleeps)) == 4
    assert clock.sleeps != ceilings


def test_a_webhook_policy_backs_off_briefly_and_waits_no_longer_than_its_timeout(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=503, count=4, path_prefix=DISCOVERY)
    cxone_sim.add_fault(status=429, retry_after=2, count=1, path_prefix=DISCOVERY)
    http = RetryingHttp(
        "webhook", policy=RetryPolicy.for_webhook(6, timeout=1.5), sleeper=clock.sleep, rng=lambda: 1.0
    )

    with pytest.raises(RetryableUpstreamError):
        http.request("GET", cxone_sim.url + DISCOVERY, budget(clock))

    # 0.2, 0.4, 0.8, then capped at 1 s; then a Retry-After over the timeout is not waited for.
    assert clock.sleeps == [0.2, 0.4, 0.8, 1.0]
    assert len(cxone_sim.requests(path_prefix=DISCOVERY)) == 5
    policy = RetryPolicy.for_webhook(3, timeout=2.5)
    assert (policy.max_attempts, policy.connect_timeout, policy.read_timeout) == (3, 2.5, 2.5)


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_client_errors_are_not_retried(cxone_sim, status):
    clock = FakeClock()
    cxone_sim.add_fault(status=status, count=1, path_prefix=DISCOVERY)

    with pytest.raises(PermanentUpstreamError) as caught:
        transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock))

    assert caught.value.status == status
    assert not caught.value.retryable
    assert clock.sleeps == []
    assert len(cxone_sim.requests(path_prefix=DISCOVERY)) == 1


def test_401_is_reported_for_the_caller_to_refresh(cxone_sim):
    clock = FakeClock()
    with pytest.raises(UnauthorizedError):
        transport(clock).request("GET", cxone_sim.url + "/dfo/3.0/contacts", budget(clock))
    assert len(cxone_sim.requests(path_prefix="/dfo/3.0/contacts")) == 1


def test_retries_stop_before_the_budget_runs_out(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=500, path_prefix=DISCOVERY)  # fails every time

    with pytest.raises(RetryableUpstreamError) as caught:
        transport(clock, base_delay=1.0, max_delay=4.0, max_attempts=10).request(
            "GET", cxone_sim.url + DISCOVERY, budget(clock, seconds=6.0)
        )

    assert caught.value.retryable
    assert caught.value.status == 500
    assert sum(clock.sleeps) <= 6.0 - 1.0  # room was left for one more attempt each time
    assert clock.sleeps == [1.0, 2.0]  # a 4 s wait would not have fitted the 3 s left


def test_a_retry_after_longer_than_the_budget_is_not_waited_for(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=429, retry_after=20, path_prefix=DISCOVERY)

    with pytest.raises(RetryableUpstreamError):
        transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock, seconds=10.0))

    assert clock.sleeps == []
    assert len(cxone_sim.requests(path_prefix=DISCOVERY)) == 1


def test_connection_errors_are_retried_then_reported_retryable():
    clock = FakeClock()
    [closed_port] = free_ports(1)  # free now, so nothing listens there

    with pytest.raises(RetryableUpstreamError, match="ConnectionError"):
        transport(clock, max_attempts=3).request("GET", f"http://127.0.0.1:{closed_port}/x", budget(clock))

    assert len(clock.sleeps) == 2


def test_idempotency_key_header_is_sent(cxone_sim):
    clock = FakeClock()
    transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock), idempotency_key="msg-1")
    assert cxone_sim.requests(path_prefix=DISCOVERY)[-1]["headers"][IDEMPOTENCY_HEADER.lower()] == "msg-1"


# Misbehaving servers, written at the socket level ---------------------------------------------


@contextmanager
def raw_server(respond: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server whose every connection is answered by `respond` (bounded: it stops with
    the test, and each test sends at most a few requests)."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            respond(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dribble(connection: socket.socket) -> None:
    """Headers at once, then one body byte every 0.2 s for up to 4 s: never a read timeout."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\nContent-Type: application/json\r\n\r\n")
    for _ in range(20):
        time.sleep(0.2)
        try:
            connection.sendall(b" ")
        except OSError:
            return


def broken_chunks(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    connection.close()


def html_page(connection: socket.socket) -> None:
    body = b"<html>upstream proxy error</html>"
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def test_a_slow_body_cannot_hold_an_attempt_past_its_deadline():
    """A server that sends a byte at a time never trips a read timeout; the attempt's own
    deadline (half the usable budget) ends it. The deadline is read from an injected clock that
    moves 0.2 s per look, so the test depends on reads, not on how fast this machine is."""
    ticks = iter(range(1000))
    clock = FakeClock()
    http = RetryingHttp(
        "cxone",
        policy=RetryPolicy(max_attempts=1, read_timeout=10.0),
        sleeper=clock.sleep,
        monotonic=lambda: next(ticks) * 0.2,
    )
    with raw_server(dribble) as url, pytest.raises(RetryableUpstreamError) as caught:
        http.request("GET", url + "/slow", TimeBudget.fixed(1.0, clock=clock.monotonic))
    assert str(caught.value) == (
        "cxone: GET /slow gave up after response not complete within the attempt's deadline"
    )
    # The window is 0.5 s: the deadline is set at the first look and passed at the fourth,
    # after three body reads of the twenty the server would have dribbled.
    assert next(ticks) == 4


def test_a_broken_body_is_retried_then_reported_retryable():
    clock = FakeClock()
    with raw_server(broken_chunks) as url, pytest.raises(RetryableUpstreamError) as caught:
        transport(clock, max_attempts=2).request("GET", url + "/broken", budget(clock))

    assert "ProtocolError" in str(caught.value)
    assert len(clock.sleeps) == 1


def test_an_unreadable_json_body_is_a_retryable_upstream_error():
    clock = FakeClock()
    with raw_server(html_page) as url:
        response = transport(clock).request("GET", url + "/.well-known/openid-configuration", budget(clock))
        with pytest.raises(RetryableUpstreamError) as caught:
            response_json(response, "cxone-auth")
    assert str(caught.value) == f"cxone-auth: unreadable JSON from {DISCOVERY} (HTTP 200)"
    assert (caught.value.service, caught.value.status) == ("cxone-auth", 200)


def test_a_malformed_url_is_a_permanent_error_naming_the_service_path_and_problem():
    with pytest.raises(PermanentUpstreamError) as caught:
        transport(FakeClock()).request("GET", "http:///pa th?to=%2B15551234567", TimeBudget.fixed(5))
    assert (caught.value.service, caught.value.status) == ("cxone", None)
    assert str(caught.value) == "cxone: cannot call /pa th: InvalidURL"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("Tue, 24 Nov 2026 12:00:09 GMT", 9.0),
        ("Tue, 24 Nov 2026 12:00:09 -0000", 9.0),  # an HTTP date with no zone: read as UTC
        ("Tue, 24 Nov 2026 11:59:00 GMT", 0.0),  # already past: retry now, never a negative wait
        ("30", 30.0),
        ("0", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header, seconds):
    assert parse_retry_after(header, lambda: NOW) == seconds


def test_a_retry_after_of_exactly_the_cap_is_waited_for(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=429, retry_after=30, count=1, path_prefix=DISCOVERY)

    response = transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock, 120))

    assert response.status_code == 200 and clock.sleeps == [30.0]


def test_the_reason_retries_ended_names_the_last_problem():
    [port] = free_ports(1)  # nothing listens there
    clock = FakeClock()
    with pytest.raises(RetryableUpstreamError, match="gave up after ConnectionError"):
        transport(clock, max_attempts=2).request("GET", f"http://127.0.0.1:{port}/x", budget(clock))


# What mutation testing found untested ----------------------------------------------------


class Remaining:
    """A Lambda context whose remaining time the test sets."""

    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_a_budget_from_a_context_is_its_remaining_seconds_less_the_reserve():
    context = Remaining(12_500)
    budget = TimeBudget.from_context(context)
    assert budget.usable_seconds() == 10.5  # 12.5 s left, 2 s kept back by default
    context.millis = 4_000
    assert budget.usable_seconds() == 2.0  # read live, not once
    assert TimeBudget.from_context(context, reserve_seconds=3.0).usable_seconds() == 1.0


def test_without_a_context_the_budget_is_sixty_seconds_less_the_reserve():
    budget = TimeBudget.from_context(None, reserve_seconds=5.0)
    assert 54.0 < budget.usable_seconds() <= 55.0
    assert budget.reserve_seconds == 5.0


def test_a_request_started_with_under_a_fifth_of_a_second_is_not_attempted(cxone_sim):
    clock = FakeClock()
    with pytest.raises(RetryableUpstreamError) as caught:
        transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock, seconds=0.2))
    assert str(caught.value) == f"cxone: GET {DISCOVERY} gave up after no attempt made"
    assert caught.value.status is None
    assert cxone_sim.requests(path_prefix=DISCOVERY) == []
    transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock, seconds=0.21))  # just enough


def test_every_attempt_of_the_policy_is_made_and_no_more(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=503, path_prefix=DISCOVERY)

    with pytest.raises(
        RetryableUpstreamError, match=r"cxone: GET /\.well-known/openid-configuration gave up after HTTP 503"
    ) as caught:
        transport(clock, max_attempts=3).request("GET", cxone_sim.url + DISCOVERY, budget(clock))

    assert caught.value.status == 503 and caught.value.service == "cxone"
    assert len(cxone_sim.requests(path_prefix=DISCOVERY)) == 3


def test_a_connection_failure_has_no_status():
    clock = FakeClock()
    [closed_port] = free_ports(1)
    with pytest.raises(RetryableUpstreamError) as caught:
        transport(clock, max_attempts=1).request("GET", f"http://127.0.0.1:{closed_port}/x", budget(clock))
    assert caught.value.status is None


def test_a_refusal_names_the_service_the_path_and_cxones_errors(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=422, count=1, path_prefix=DISCOVERY)

    with pytest.raises(PermanentUpstreamError) as caught:
        transport(clock).request("GET", cxone_sim.url + DISCOVERY + "?phone=14155552671", budget(clock))

    assert str(caught.value) == "cxone: GET /.well-known/openid-configuration refused (HTTP 422)"
    assert caught.value.service == "cxone"
    [detail] = caught.value.details
    assert set(detail) == {"field", "message", "errorCode"} and detail["errorCode"] == "UnprocessableEntity"


def test_a_401_names_the_service():
    clock = FakeClock()
    unauthorized = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    with raw_server(lambda c: c.sendall(unauthorized)) as url, pytest.raises(UnauthorizedError) as caught:
        transport(clock).request("GET", url + "/x", budget(clock))
    assert str(caught.value) == "cxone: access token refused (HTTP 401)" and caught.value.service == "cxone"


def gzipped(connection: socket.socket) -> None:
    body = gzip.compress(json.dumps({"ok": True, "pad": "x" * 40_000}).encode())
    head = (
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    connection.sendall(head.encode() + body)


def test_a_gzip_encoded_body_is_decoded_whole(cxone_sim):
    clock = FakeClock()
    with raw_server(gzipped) as url:
        response = transport(clock).request("GET", url + "/gz", budget(clock))
    assert response_json(response, "cxone") == {"ok": True, "pad": "x" * 40_000}


class RecordingSession:
    """Stands in for requests.Session to see what each attempt asks for."""

    def __init__(self) -> None:
        self.timeouts: list[object] = []

    def request(self, method, url, **kwargs):
        self.timeouts.append(kwargs["timeout"])
        raise requests.exceptions.ConnectTimeout("no answer")


@pytest.mark.parametrize(
    ("seconds", "expected"), [(60.0, (3.05, 10.0)), (4.0, (2.0, 2.0)), (10.0, (3.05, 5.0))]
)
def test_each_attempt_has_a_connect_and_read_timeout_inside_its_window(seconds, expected):
    clock = FakeClock()
    session = RecordingSession()
    http = RetryingHttp("cxone", session=session, policy=RetryPolicy(max_attempts=1), sleeper=clock.sleep)
    with pytest.raises(RetryableUpstreamError, match="ConnectTimeout"):
        http.request("GET", "http://127.0.0.1:9/x", budget(clock, seconds))
    assert session.timeouts == [expected]  # window: half the usable budget, at most the read timeout


def test_the_attempt_deadline_is_inclusive_of_its_last_moment():
    """Deadline 0.5 s: a read at exactly 0.5 s is still inside it; the next look, past it, ends it."""
    ticks = iter(range(1000))
    clock = FakeClock()
    http = RetryingHttp(
        "cxone",
        policy=RetryPolicy(max_attempts=1, read_timeout=10.0),
        sleeper=clock.sleep,
        monotonic=lambda: next(ticks) * 0.25,
    )
    with raw_server(dribble) as url, pytest.raises(RetryableUpstreamError, match="deadline"):
        http.request("GET", url + "/slow", TimeBudget.fixed(1.0, clock=clock.monotonic))
    assert next(ticks) == 4  # looks at 0, 0.25, 0.5 (inside) and 0.75 (past)


def test_a_retry_waits_only_if_one_more_attempt_fits_the_budget(cxone_sim):
    clock = FakeClock()
    cxone_sim.add_fault(status=429, retry_after=4, path_prefix=DISCOVERY)
    # 4 s wait + 1 s for the attempt = 5 s: it fits exactly in 5 s of budget, not in 4.99.
    with pytest.raises(RetryableUpstreamError):
        transport(clock, max_attempts=2).request("GET", cxone_sim.url + DISCOVERY, budget(clock, 5.0))
    assert clock.sleeps == [4.0]
    clock = FakeClock()
    with pytest.raises(RetryableUpstreamError):
        transport(clock, max_attempts=2).request("GET", cxone_sim.url + DISCOVERY, budget(clock, 4.99))
    assert clock.sleeps == []


def test_retries_and_give_ups_are_logged_for_the_operator(cxone_sim, captured_logs):
    clock = FakeClock()
    cxone_sim.add_fault(status=503, count=1, path_prefix=DISCOVERY)
    # A jitter of 0.51234 on the first 0.25 s step: 0.1280850 s, logged to the millisecond.
    transport(clock, rng=lambda: 0.51234).request("GET", cxone_sim.url + DISCOVERY, budget(clock))
    cxone_sim.add_fault(status=429, retry_after=3600, count=1, path_prefix=DISCOVERY)
    with pytest.raises(RetryableUpstreamError):
        transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock))
    cxone_sim.add_fault(status=503, count=1, path_prefix=DISCOVERY)
    with pytest.raises(RetryableUpstreamError):
        transport(clock).request("GET", cxone_sim.url + DISCOVERY, budget(clock, 1.0))

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    retried = next(line for line in lines if line["message"] == "retrying upstream call")
    assert (retried["service"], retried["attempt"], retried["problem"], retried["delay_seconds"]) == (
        "cxone",
        1,
        "HTTP 503",
        0.128,
    )
    waited = next(
        line for line in lines if line["message"] == "upstream asked to wait longer than an invocation will"
    )
    assert (waited["service"], waited["retry_after_seconds"], waited["level"]) == ("cxone", 3600.0, "WARNING")
    exhausted = next(line for line in lines if line["message"] == "retry budget exhausted")
    assert (exhausted["service"], exhausted["attempt"], exhausted["problem"]) == ("cxone", 1, "HTTP 503")


def test_the_default_session_pools_connections_for_both_schemes():
    session = build_session()
    for scheme in ("https://", "http://"):
        adapter = session.get_adapter(scheme + "example.com")
        assert (adapter._pool_connections, adapter._pool_maxsize, adapter.max_retries.total) == (16, 16, 0)
    assert build_session(4).get_adapter("https://x")._pool_maxsize == 4
