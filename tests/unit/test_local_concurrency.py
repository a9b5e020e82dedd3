"""The local stack runs functions the way Lambda does: several execution environments at once,
started as needed, and queue pollers up to the event source's MaximumConcurrency. Interleavings
are forced with events, never left to timing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import pytest

from local.runtime import FunctionError, FunctionPool, FunctionSpec
from local.template import load_template

SPEC = FunctionSpec("Fn", "fn", Path("."), "app.lambda_handler", 10, 128, {})


class Environment:
    """Stands in for one emulator process: an invoke holds it until the test lets it go."""

    started: ClassVar[list[Environment]] = []

    def __init__(self, spec: FunctionSpec) -> None:
        self.release = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)
        self.invocations = 0

    def start(self) -> None:
        Environment.started.append(self)

    def invoke(self, event):
        self.invocations += 1
        self.entered.release()
        assert self.release.acquire(timeout=10)
        return {"by": id(self), "event": event}

    def stop(self) -> None:
        self.release.release()


@pytest.fixture(autouse=True)
def _fresh():
    Environment.started = []


def test_busy_environments_make_the_pool_start_another_up_to_its_size():
    pool = FunctionPool(SPEC, size=2, environment=Environment)
    pool.start()
    results: list[dict] = []
    threads = [threading.Thread(target=lambda n=n: results.append(pool.invoke(n))) for n in range(3)]
    for thread in threads:
        thread.start()

    first = Environment.started[0]
    assert first.entered.acquire(timeout=5)
    while len(Environment.started) < 2:  # the second invoke found the first busy: a cold start
        threading.Event().wait(0.01)
    second = Environment.started[1]
    assert second.entered.acquire(timeout=5)
    assert pool.environments == 2  # the third invoke waits; the pool is full

    first.release.release()
    assert first.entered.acquire(timeout=5)  # the waiting invoke took the environment that came free
    first.release.release()
    second.release.release()
    for thread in threads:
        thread.join(5)

    assert sorted(result["event"] for result in results) == [0, 1, 2]
    assert (first.invocations, second.invocations) == (2, 1)


def test_a_stopped_pool_refuses_invokes():
    pool = FunctionPool(SPEC, size=1, environment=Environment)
    pool.start()
    pool.stop()
    with pytest.raises(FunctionError):
        pool.invoke({})


def test_queue_sources_carry_their_maximum_concurrency_from_the_template_parameter():
    template = load_template(ConsumerMaxConcurrency="7")
    [source] = [s for s in template.queue_sources() if s.function_id == "InboundSmsConsumerFunction"]
    assert source.maximum_concurrency == 7
    default = load_template().parameter("ConsumerMaxConcurrency")
    [source] = [s for s in load_template().queue_sources() if s.function_id == "InboundSmsConsumerFunction"]
    assert source.maximum_concurrency == int(default)
