"""The dashboard shows what the code emits, dimension for dimension (tests/dashboard.py); each
workflow's own tests check its metrics the same way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cxone_relay
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.data.leases import Lease
from cxone_relay.workflows.social_inbox.puller import LEASE_PURPOSE
from local.builders import emf_metrics, social_contact
from local.builders import inbound_sms as sms
from local.template import load_template
from tests.dashboard import assert_matches_dashboard, dashboard_queries
from tests.integration.inbound_harness import InboundHarness
from tests.integration.inbox_harness import CHECKPOINT, InboxHarness


@pytest.fixture
def inbound(stack, cxone_sim, ticketing_sim, monkeypatch) -> InboundHarness:
    return InboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch)


def test_inbound_metrics_match_their_dashboard_queries(inbound, capsys):
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

    assert_matches_dashboard(emf_metrics(capsys.readouterr().out))


def test_every_dashboard_query_names_a_metric_the_code_emits():
    package = Path(cxone_relay.__file__).parent  # wherever it is imported from (mutation runs copy it)
    source = "\n".join(path.read_text() for path in package.rglob("*.py"))
    emitted_names = set(re.findall(r'count\(\s*"(\w+)"', source)) | set(re.findall(r'name="(\w+)"', source))
    assert {name for name, _ in dashboard_queries()} <= emitted_names


def test_the_stack_dimension_keeps_two_stacks_apart():
    assert all("stack" in dims for _, dims in dashboard_queries())
    body = load_template().resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    custom = [line for line in body.splitlines() if "{CxoneRelay," in line]
    assert custom and all('stack=\\"${AWS::StackName}\\"' in line for line in custom)


def test_inbox_metrics_match_their_dashboard_queries(stack, cxone_sim, ticketing_sim, monkeypatch, capsys):
    inbox = InboxHarness(stack, cxone_sim, ticketing_sim, monkeypatch)
    texts = ["Thanks, all good now", "The parcel is missing", "I want a refund immediately"]
    inbox.cxone.load_contacts(
        [social_contact(f"c-{n}", texts[n], updated_at=inbox.ago(minutes=10 - n)) for n in range(3)]
    )
    inbox.run()
    # A run that finds the lease held emits its own count.
    table = DynamoTable(inbox.dynamodb, stack.tables["StateTable"])
    Lease(table, LEASE_PURPOSE, 300, clock=inbox.clock, holder="other").acquire(CHECKPOINT)
    inbox.run()

    emitted = emf_metrics(capsys.readouterr().out)
    assert {name for name, _ in emitted} >= {
        "ConversationsPulled",
        "ConversationsByPriority",
        "InboxPages",
        "InboxRunDuration",
        "CheckpointLag",
        "InboxRunsSkipped",
        "TicketsUpserted",
    }
    assert {dims["priority"] for name, dims in emitted if name == "ConversationsByPriority"} == {
        "HIGH",
        "MEDIUM",
        "LOW",
    }
    assert_matches_dashboard(emitted)
