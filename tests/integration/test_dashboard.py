"""Every custom-metric query on the dashboard matches a metric the code emits, with exactly the
dimensions it is emitted with (a SEARCH schema matches only that dimension set), and every metric
the workflows emit has its place on the dashboard."""

from __future__ import annotations

import json
import re

import pytest

from local.builders import emf_metrics
from local.builders import inbound_sms as sms
from local.template import load_template
from tests.integration.inbound_harness import InboundHarness

NAMESPACE = "CxoneRelay"
# Emitted by Powertools itself, per function; not part of the relay's own story.
POWERTOOLS_METRICS = {"ColdStart"}
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*MetricName=\"(\w+)\"")


def dashboard_queries() -> set[tuple[str, frozenset[str]]]:
    body = load_template().resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    document = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    queries = set()
    for widget in document["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            for item in row:
                match = _SEARCH.search(item.get("expression", "")) if isinstance(item, dict) else None
                if match:
                    namespace, *dimensions = [part.strip() for part in match.group(1).split(",")]
                    if namespace == NAMESPACE:
                        queries.add((match.group(2), frozenset(dimensions)))
    return queries


@pytest.fixture
def inbound(stack, cxone_sim, ticketing_sim, monkeypatch) -> InboundHarness:
    return InboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch)


def test_dashboard_queries_match_the_emitted_metrics(inbound, capsys):
    # Every path that emits: routed and ticketed, keywords, refusals, a dead letter, a retry.
    inbound.post(sms("msg-routed", "A question about my invoice"))
    inbound.post(sms("msg-stop", "STOP"))
    inbound.post(sms("msg-spam", "Free lottery"))
    inbound.post(sms("msg-refused", "Please check my payment"))
    inbound.post(sms("msg-throttled", "Please check my refund"))
    inbound.cxone.add_fault(status=400, body_contains='"msg-refused"', path_prefix="/dfo/3.0/channels")
    inbound.cxone.add_fault(
        status=429, retry_after=0, body_contains='"msg-throttled"', path_prefix="/dfo/3.0/channels"
    )
    inbound.deliver()

    emitted = {
        (name, frozenset(dims))
        for name, dims in emf_metrics(capsys.readouterr().out)
        if name not in POWERTOOLS_METRICS
    }
    queries = dashboard_queries()

    assert all("stack" in dims and "service" in dims for _, dims in emitted), emitted
    assert queries - emitted == set(), "the dashboard asks for dimension sets nothing emits"
    assert emitted - queries == set(), "emitted metrics the dashboard does not show"


def test_the_stack_dimension_keeps_two_stacks_apart():
    assert all("stack" in dims for _, dims in dashboard_queries())
    body = load_template().resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    custom = [line for line in body.splitlines() if "{CxoneRelay," in line]
    assert custom and all('stack=\\"${AWS::StackName}\\"' in line for line in custom)
