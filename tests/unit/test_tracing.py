"""X-Ray only for sampled invocations: the Tracer (and with it the X-Ray SDK) is made on the
first invocation X-Ray records, and an unsampled one runs the handler without it."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.tracing import tracer as powertools_tracing

from cxone_relay.platform.observability import TRACE_HEADER_VARIABLE, ConditionalTracer

SAMPLED = "Root=1-65f0c0de-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
NOT_SAMPLED = "Root=1-65f0c0de-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0"


class FakeTracer:
    """Records the handlers it wraps and the invocations that went through them."""

    def __init__(self) -> None:
        self.wrapped: list[str] = []
        self.traced_calls = 0

    def capture_lambda_handler(self, handler: Any) -> Any:
        self.wrapped.append(handler.__name__)

        def traced(event: Any, context: Any) -> Any:
            self.traced_calls += 1
            return handler(event, context)

        return traced


@pytest.fixture
def made() -> list[FakeTracer]:
    return []


@pytest.fixture
def conditional(made: list[FakeTracer]) -> ConditionalTracer:
    def make() -> FakeTracer:
        made.append(FakeTracer())
        return made[-1]

    return ConditionalTracer(make)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"echo": event}


def test_an_unsampled_invocation_never_makes_the_tracer(conditional, made, monkeypatch):
    wrapped = conditional.capture_lambda_handler(handler)
    for header in (NOT_SAMPLED, None):
        if header is None:
            monkeypatch.delenv(TRACE_HEADER_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(TRACE_HEADER_VARIABLE, header)
        assert wrapped({"n": 1}, None) == {"echo": {"n": 1}}
    assert made == []


def test_a_sampled_invocation_runs_through_one_tracer_made_once(conditional, made, monkeypatch):
    wrapped = conditional.capture_lambda_handler(handler)
    monkeypatch.setenv(TRACE_HEADER_VARIABLE, SAMPLED)

    assert wrapped({"n": 1}, None) == {"echo": {"n": 1}}
    assert wrapped({"n": 2}, None) == {"echo": {"n": 2}}

    [tracer] = made
    assert (tracer.wrapped, tracer.traced_calls) == (["handler"], 2)
    monkeypatch.setenv(TRACE_HEADER_VARIABLE, NOT_SAMPLED)
    wrapped({"n": 3}, None)
    assert tracer.traced_calls == 2


def test_a_tracer_made_on_a_warm_invocation_does_not_report_a_cold_start(conditional, monkeypatch):
    monkeypatch.setattr(powertools_tracing, "is_cold_start", True)
    wrapped = conditional.capture_lambda_handler(handler)
    monkeypatch.setenv(TRACE_HEADER_VARIABLE, NOT_SAMPLED)
    wrapped({}, None)  # the container's first invocation, not traced

    monkeypatch.setenv(TRACE_HEADER_VARIABLE, SAMPLED)
    wrapped({}, None)

    assert powertools_tracing.is_cold_start is False


def test_a_first_invocation_that_is_sampled_is_left_a_cold_start(conditional, monkeypatch):
    monkeypatch.setattr(powertools_tracing, "is_cold_start", True)
    wrapped = conditional.capture_lambda_handler(handler)
    monkeypatch.setenv(TRACE_HEADER_VARIABLE, SAMPLED)

    wrapped({}, None)

    # The fake tracer does not consume the flag as Powertools' would: it is still ours to report.
    assert powertools_tracing.is_cold_start is True
