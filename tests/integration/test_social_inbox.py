"""The social inbox workflow through the inbox-pull handler, on moto built from template.yaml and
the CXone and ticketing simulators, with an injected clock (issue 12's acceptance tests)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cxone_relay.platform.data.checkpoints import CheckpointStore
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.errors import PermanentUpstreamError
from cxone_relay.workflows.social_inbox.errors import CorruptCheckpoint
from cxone_relay.workflows.social_inbox.models import Classification, Conversation, Priority
from cxone_relay.workflows.social_inbox.puller import LEASE_PURPOSE
from cxone_relay.workflows.social_inbox.rules import Classifier
from cxone_relay.workflows.social_inbox.tickets import ticket_for
from cxone_relay.workflows.social_inbox.window import position_text
from local.builders import social_contact, stored_fields
from local.events import LocalLambdaContext
from tests.integration.inbox_harness import CHECKPOINT, NOW, TICKETS_PATH, InboxHarness, ScriptedContext
from tests.logs import logged_lines

PAGE_SIZE = 50  # the simulator's, like DFO's default page
CHANNELS = ["FACEBOOK", "TWITTER", "INSTAGRAM", "WHATSAPP"]
SETTLE = timedelta(seconds=60)  # the default: the window ends a minute before now


@pytest.fixture
def inbox(stack, cxone_sim, ticketing_sim, monkeypatch) -> InboxHarness:
    return InboxHarness(stack, cxone_sim, ticketing_sim, monkeypatch)


def backlog(inbox: InboxHarness, count: int = 230) -> list[dict[str, Any]]:
    """`count` conversations updated a minute apart, the last one two minutes ago."""
    # LOW, MEDIUM, HIGH
    texts = ["Thanks, all good now", "The parcel is missing", "I want a refund immediately"]
    contacts = [
        social_contact(
            f"c-{n:03d}",
            texts[n % 3],
            updated_at=inbox.ago(minutes=count + 1 - n),
            channel=CHANNELS[n % 4],
        )
        for n in range(count)
    ]
    inbox.cxone.load_contacts(contacts)
    return contacts


def once_each(inbox: InboxHarness) -> Counter[str]:
    return Counter(inbox.upserted_ids())


def plain(value: Any) -> Any:
    """An audit record's value as JSON has it (DynamoDB hands numbers back as Decimals)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def decisions(inbox: InboxHarness, subject: str | None = None) -> list[dict[str, Any]]:
    """The audit records, without what only says where and when they were written."""
    return [plain(stored_fields(r)) for r in inbox.audit(subject)]


# Besides the logger's context: what a line has whatever it logs, and the trace of an exception.
NOT_THE_LINES_OWN = {"level", "message", "exception", "exception_name", "stack_trace"}


def logged(captured_logs: Any, message: str) -> list[tuple[str, dict[str, Any]]]:
    """(level, the keys a line adds) of every log line with this message."""
    return [
        (line["level"], {k: v for k, v in line.items() if k not in NOT_THE_LINES_OWN})
        for line in logged_lines(captured_logs.getvalue(), message)
    ]


def metric_values(output: str) -> list[tuple[str, dict[str, str], Any]]:
    """(name, dimensions besides stack and service, value) of every EMF metric printed."""
    found = []
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = {
                name: document[name]
                for names in directive["Dimensions"]
                for name in names
                if name not in {"stack", "service"}
            }
            for metric in directive["Metrics"]:
                found.append((metric["Name"], dimensions, document[metric["Name"]]))
    return found


def inbox_metrics(output: str) -> dict[str, Any]:
    """The inbox's own metrics of one run: name (and priority) -> the values emitted."""
    wanted = {"InboxPages", "ConversationsPulled", "ConversationsByPriority", "TicketsUpserted"}
    wanted |= {"InboxRunDuration", "CheckpointLag", "InboxRunsSkipped"}
    found: dict[str, Any] = {}
    for name, dimensions, value in metric_values(output):
        if name in wanted:
            key = f"{name}[{dimensions['priority']}]" if "priority" in dimensions else name
            assert set(dimensions) <= {"priority"}, (name, dimensions)
            found.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return found


def test_230_conversations_over_5_pages_make_5_ticket_calls_of_at_most_50_and_a_final_checkpoint(
    inbox, capsys
):
    contacts = backlog(inbox)
    context = LocalLambdaContext("inbox-pull", 240)

    result = inbox.run(context)

    assert [len(call) for call in inbox.ticket_calls()] == [50, 50, 50, 50, 30]
    assert once_each(inbox) == Counter({contact["id"]: 1 for contact in contacts})
    assert result["outcome"] == "completed"
    assert (result["pages"], result["conversations"], result["tickets"]) == (5, 230, 230)
    assert result["by_priority"] == {"HIGH": 76, "LOW": 77, "MEDIUM": 77}
    # Read to the end: the checkpoint moves to the window's end, a minute before now.
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None and checkpoint.position == position_text(NOW - SETTLE)
    assert checkpoint.version == 5  # saved after every page
    assert result["checkpoint_lag_seconds"] == 60.0
    first, *later = inbox.listing_requests()
    assert first["query"] == {
        "channel[]": CHANNELS,
        "date[from]": (NOW - timedelta(days=90)).date().isoformat(),
        "date[to]": NOW.date().isoformat(),
        "sorting": "updatedAt",
        "sortingType": "asc",
    }
    assert len(later) == 4 and all(set(r["query"]) == {"scrollToken"} for r in later)
    assert result["run_id"] == context.aws_request_id
    output = capsys.readouterr().out
    units = {
        name: unit
        for line in output.splitlines()
        if line.startswith('{"_aws"')
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for name, unit in ((m["Name"], m["Unit"]) for m in directive["Metrics"])
    }
    assert (units["InboxRunDuration"], units["CheckpointLag"]) == ("Milliseconds", "Seconds")
    assert inbox_metrics(output) == {
        "InboxPages": [5],
        "ConversationsPulled": [230],
        "ConversationsByPriority[HIGH]": [76],
        "ConversationsByPriority[LOW]": [77],
        "ConversationsByPriority[MEDIUM]": [77],
        "TicketsUpserted": [50, 50, 50, 50, 30],
        "InboxRunDuration": [0],
        "CheckpointLag": [60.0],
    }


def test_a_ticket_carries_the_fields_the_issue_names(inbox):
    inbox.cxone.load_contacts(
        [
            social_contact(
                "c-refund",
                "This is broken and I want a refund. Terrible service.",
                updated_at=inbox.ago(minutes=5),
                created_at=inbox.ago(hours=2),
                channel="TWITTER",
                subject="Order 1234",
            )
        ]
    )

    inbox.run()

    [[ticket]] = inbox.ticket_calls()
    assert ticket == {
        "id": "social-c-refund",
        "external_id": "c-refund",
        "subject": "Order 1234",
        "description": "This is broken and I want a refund. Terrible service.",
        "status": "open",
        "created_at": "2026-03-10T10:00:00.000Z",
        "channel": "TWITTER",
        "language": "en",
        "keywords": ["refund", "broken"],
        "priority": "HIGH",
        "sentiment_score": ticket["sentiment_score"],
    }
    assert -1 <= ticket["sentiment_score"] < -0.4


def test_a_conversation_without_subject_or_channel_gets_a_ticket_named_after_its_id():
    # The listing is asked for named channels, so this is a contact the API served oddly.
    conversation = Conversation(
        id="c-unnamed",
        channel=None,
        subject=None,
        text="Hello there",
        created_at=NOW,
        updated_at=NOW,
    )
    classification = Classification(Priority.LOW, (), None, "fr", shouting=False, raised_for_shouting=False)

    ticket = ticket_for(conversation, classification)

    assert ticket.model_dump() == {
        "id": "social-c-unnamed",
        "external_id": "c-unnamed",
        "subject": "social conversation c-unnamed",
        "description": "Hello there",
        "status": "open",
        "created_at": "2026-03-10T12:00:00.000Z",
        "channel": "social",
        "category": None,
        "queue": None,
        "language": "fr",
        "keywords": [],
        "priority": "LOW",
        "sentiment_score": None,
    }


def test_the_customers_words_come_from_inbound_messages_else_from_the_body(inbox):
    with_messages = social_contact(
        "c-messages",
        "Where is my order?",
        created_at=inbox.ago(minutes=20),
        updated_at=inbox.ago(minutes=9),
        body="(body text)",
    )
    with_messages["messages"].append(
        {
            "id": "c-messages-in-2",
            "direction": "inbound",
            "createdAt": with_messages["updatedAt"],
            "messageContent": {"type": "TEXT", "payload": {"text": "Hello??"}},
        }
    )
    with_messages["messages"] += [
        # No time: after the dated ones. No id, or no words: not read at all.
        {"id": "c-messages-in-3", "direction": "inbound", "messageContent": {"payload": {"text": "Undated"}}},
        {
            "direction": "inbound",
            "createdAt": with_messages["updatedAt"],
            "messageContent": {"payload": {"text": "No id"}},
        },
        {
            "id": "c-messages-in-4",
            "direction": "inbound",
            "createdAt": with_messages["updatedAt"],
            "messageContent": {"payload": {"text": "  "}},
        },
    ]
    with_messages["messages"].reverse()
    replies_only = social_contact(
        "c-body",
        None,
        updated_at=inbox.ago(minutes=8),
        body="My card was charged twice",
        replies=("An agent will call you",),
    )
    nothing = social_contact("c-empty", None, updated_at=inbox.ago(minutes=7))
    inbox.cxone.load_contacts([with_messages, replies_only, nothing])

    inbox.run()

    tickets = inbox.tickets()
    assert tickets["c-messages"]["description"] == "Where is my order?\nHello??\nUndated"
    assert tickets["c-body"]["description"] == "My card was charged twice"
    assert tickets["c-empty"]["description"] == ""
    # One messages listing for the page: the contacts it takes, inbound only.
    [messages] = inbox.cxone.requests(path_prefix="/dfo/3.0/messages")
    assert messages["query"] == {
        "contactId[]": ["c-messages", "c-body", "c-empty"],
        "direction": "inbound",
    }


def test_a_run_cut_short_after_page_2_is_resumed_with_no_gap_and_no_duplicate(inbox):
    contacts = backlog(inbox)
    # Plenty of time until page 2's tickets have landed, then too little for another page.
    short = ScriptedContext(lambda: 60.0 if len(inbox.ticket_calls()) < 2 else 5.0)
    inbox.clock.advance(seconds=0.2504)  # a run starts at no round second

    first = inbox.run(short)

    assert (first["outcome"], first["reason"], first["pages"], first["conversations"]) == (
        "incomplete",
        "time budget spent",
        2,
        100,
    )
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None
    assert checkpoint.position == position_text(NOW - timedelta(minutes=230 + 1 - 99))
    assert checkpoint.seen_at_position == ("c-099",)
    assert first["checkpoint_lag_seconds"] == 132 * 60 + 0.25  # to the millisecond

    second = inbox.run()

    assert (second["outcome"], second["conversations"]) == ("completed", 130)
    assert once_each(inbox) == Counter({contact["id"]: 1 for contact in contacts})
    assert [len(call) for call in inbox.ticket_calls()] == [50, 50, 50, 50, 30]


def test_a_run_invoked_without_a_request_id_gets_a_run_id_of_its_own(inbox):
    backlog(inbox, 3)
    inbox.run()  # the container's puller, built with the test's clocks
    blank = LocalLambdaContext("inbox-pull", 240)
    blank.aws_request_id = ""

    # Called directly, as a local run or a script would: no context at all, or one with no id.
    runs = [inbox.handler.pull.handle({}, None), inbox.handler.pull.handle({}, blank)]

    run_ids = [uuid.UUID(run["run_id"]) for run in runs]
    assert run_ids[0] != run_ids[1]
    for run in runs:
        assert [r["action"] for r in decisions(inbox, run["run_id"])] == ["run_completed"]


def test_contacts_sharing_an_update_time_across_a_page_break_are_each_taken_once(inbox):
    # 60 contacts updated at the same instant: page 1 ends in the middle of them.
    same = inbox.ago(minutes=10)
    contacts = [social_contact(f"t-{n:02d}", "hello there", updated_at=same) for n in range(60)]
    inbox.cxone.load_contacts(contacts)
    cut = ScriptedContext(lambda: 60.0 if not inbox.ticket_calls() else 5.0)

    inbox.run(cut)
    checkpoint = inbox.checkpoint()
    inbox.run()

    assert checkpoint is not None and checkpoint.position == position_text(same)
    assert len(checkpoint.seen_at_position) == PAGE_SIZE
    assert once_each(inbox) == Counter({contact["id"]: 1 for contact in contacts})


def test_two_overlapping_runs_never_both_process_a_page(inbox, captured_logs, capsys):
    contacts = backlog(inbox, 120)
    overlapping: list[dict[str, Any]] = []

    def remaining() -> float:
        # While the first run is between pages 1 and 2, the schedule fires again; the second
        # run's stopwatch moves a quarter second each time it is read.
        if len(inbox.ticket_calls()) == 1 and not overlapping:
            readings = iter(range(1000))
            inbox.stopwatch = lambda: next(readings) * 0.25
            overlapping.append(inbox.run())
        return 60.0

    first = inbox.run(ScriptedContext(remaining))

    [second] = overlapping
    assert second == {
        "run_id": second["run_id"],
        "outcome": "skipped",
        "reason": "another run holds the lease",
        "pages": 0,
        "conversations": 0,
        "by_priority": {},
        "tickets": 0,
        "dropped": {},
        "window_from": None,
        "window_to": None,
        "checkpoint": None,
        "checkpoint_lag_seconds": None,
        "duration_ms": 250,
    }
    assert inbox_metrics(capsys.readouterr().out)["InboxRunsSkipped"] == [1]
    assert decisions(inbox, second["run_id"]) == [
        {
            "workflow": "social-inbox",
            "subject": second["run_id"],
            "action": "run_skipped",
            "outcome": "skipped",
            "reason": "another run holds the lease",
            "correlation_id": second["run_id"],
        }
    ]
    assert logged(captured_logs, "inbox pull skipped: another run holds the lease") == [
        ("INFO", {"run_id": second["run_id"]})
    ]
    assert (first["outcome"], first["conversations"]) == ("completed", 120)
    assert once_each(inbox) == Counter({contact["id"]: 1 for contact in contacts})
    # The lease is released at the end: the next run runs, and finds nothing new to upsert.
    third = inbox.run()
    assert (third["outcome"], third["conversations"]) == ("completed", 0)
    assert len(inbox.upserted_ids()) == 120


def test_a_run_whose_checkpoint_another_run_moved_on_stops_without_moving_it_back(inbox, captured_logs):
    backlog(inbox, 150)
    store = inbox.checkpoints()
    later = position_text(inbox.ago(minutes=1))

    def remaining() -> float:
        # After page 1, a run that took over (say its lease lapsed) saves a newer checkpoint.
        current = store.load(CHECKPOINT)
        if current is not None and current.version == 1:
            store.save(CHECKPOINT, later, ["someone-else"], expected_version=1)
        return 60.0

    result = inbox.run(ScriptedContext(remaining))

    assert (result["outcome"], result["reason"], result["pages"]) == (
        "incomplete",
        "checkpoint moved by another run",
        2,
    )
    assert logged(captured_logs, "inbox checkpoint moved by another run") == [
        ("WARNING", {"run_id": result["run_id"]})
    ]
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None
    assert (checkpoint.position, checkpoint.seen_at_position, checkpoint.version) == (
        later,
        ("someone-else",),
        2,
    )


def test_a_429_mid_paging_is_honoured_and_the_page_retried(inbox):
    contacts = backlog(inbox, 120)

    def remaining() -> float:
        # Once the first page is served, CXone throttles the next request for 7 seconds.
        if len(inbox.listing_requests()) == 1 and not inbox.cxone.faults():
            inbox.cxone.add_fault(status=429, retry_after=7, path_prefix="/dfo/3.0/contacts", count=1)
        return 60.0

    result = inbox.run(ScriptedContext(remaining))

    assert result["outcome"] == "completed"
    assert 7.0 in inbox.sleeps  # waited what Retry-After said, through the injected sleeper
    statuses = [(r["status"], set(r["query"])) for r in inbox.listing_requests()]
    assert statuses[1:3] == [(429, {"scrollToken"}), (200, {"scrollToken"})]
    assert inbox.listing_requests()[1]["query"] == inbox.listing_requests()[2]["query"]
    assert once_each(inbox) == Counter({contact["id"]: 1 for contact in contacts})


def test_cxone_down_ends_the_run_early_with_the_checkpoint_of_the_pages_done(inbox):
    backlog(inbox, 120)

    def remaining() -> float:
        if len(inbox.listing_requests()) == 1 and not inbox.cxone.faults():
            inbox.cxone.add_fault(status=503, path_prefix="/dfo/3.0/contacts")
        return 60.0

    result = inbox.run(ScriptedContext(remaining))

    assert (result["outcome"], result["pages"], result["conversations"]) == ("incomplete", 1, 50)
    assert (
        result["reason"]
        == "cxone unavailable: cxone: GET /dfo/3.0/contacts gave up after HTTP 503 (HTTP 503)"
    )
    [run] = decisions(inbox, result["run_id"])
    assert (run["action"], run["outcome"], run["reason"]) == ("run_incomplete", "retry", result["reason"])
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None and checkpoint.seen_at_position == ("c-049",)
    inbox.cxone.clear_faults()
    assert inbox.run()["conversations"] == 70
    assert len(set(inbox.upserted_ids())) == len(inbox.upserted_ids()) == 120


def test_cxone_refusing_the_listing_is_a_function_error_with_an_audited_run(inbox, captured_logs):
    backlog(inbox, 10)
    inbox.cxone.add_fault(status=403, path_prefix="/dfo/3.0/contacts")
    context = LocalLambdaContext("inbox-pull", 240)

    with pytest.raises(PermanentUpstreamError) as refused:
        inbox.run(context)

    run_id = context.aws_request_id
    reason = f"cxone refused: {refused.value}"
    details = {
        "pages": 0,
        "conversations": 0,
        "by_priority": {},
        "tickets": 0,
        "dropped": {},
        "window_from": position_text(NOW - timedelta(days=90)),
        "window_to": position_text(NOW - SETTLE),
        "checkpoint": position_text(NOW - timedelta(days=90)),
        "checkpoint_lag_seconds": 90 * 86400.0,
        "duration_ms": 0,
    }
    assert decisions(inbox) == [
        {
            "workflow": "social-inbox",
            "subject": run_id,
            "action": "run_failed",
            "outcome": "retry",
            "reason": reason,
            "details": details,
            "correlation_id": run_id,
        }
    ]
    assert str(refused.value) == "cxone: GET /dfo/3.0/contacts refused (HTTP 403)"
    assert logged(captured_logs, "inbox pull run finished") == [
        ("ERROR", {"run_id": run_id, "outcome": "run_failed"} | details)
    ]
    assert inbox.checkpoint() is None
    # The lease was released: the next run is not held up.
    inbox.cxone.clear_faults()
    assert inbox.run()["conversations"] == 10


def test_an_unexpected_error_is_a_function_error_with_an_audited_run_named_after_it(
    inbox, monkeypatch, captured_logs
):
    backlog(inbox, 3)

    def broken(self: Classifier, text: str) -> Any:
        raise LookupError("a language model that did not load")

    monkeypatch.setattr(Classifier, "classify", broken)

    with pytest.raises(LookupError):
        inbox.run()

    [run] = decisions(inbox)
    assert (run["action"], run["outcome"], run["reason"]) == ("run_failed", "retry", "LookupError")
    assert run["details"]["pages"] == 1
    [(level, line)] = logged(captured_logs, "inbox pull run finished")
    assert (level, line["outcome"]) == ("ERROR", "run_failed")
    assert inbox.checkpoint() is None
    assert inbox.ticket_calls() == []


def test_a_checkpoint_that_cannot_be_read_fails_the_run_audited_and_logged(inbox, captured_logs, monkeypatch):
    backlog(inbox, 3)
    inbox.checkpoints().save(CHECKPOINT, "not a time", [], expected_version=0)
    load = CheckpointStore.load

    def slow_load(store: CheckpointStore, name: str) -> Any:
        inbox.stopwatch.advance(seconds=2)  # the run's duration, on the injected stopwatch
        return load(store, name)

    monkeypatch.setattr(CheckpointStore, "load", slow_load)

    with pytest.raises(CorruptCheckpoint):
        inbox.run()

    [run] = decisions(inbox)
    assert run == {
        "workflow": "social-inbox",
        "subject": run["subject"],
        "action": "run_failed",
        "outcome": "retry",
        "reason": "CorruptCheckpoint",
        "details": {"duration_ms": 2000},
        "correlation_id": run["subject"],
    }
    line = {"run_id": run["subject"], "outcome": "run_failed", "reason": "CorruptCheckpoint"}
    assert logged(captured_logs, "inbox pull run finished") == [("ERROR", line | {"duration_ms": 2000})]
    assert inbox.listing_requests() == [] and inbox.ticket_calls() == []


def test_the_retention_window_is_enforced_and_old_contacts_are_never_ticketed(inbox):
    limit = NOW - timedelta(days=90)
    inbox.cxone.load_contacts(
        [
            # Outside the listing's days altogether.
            social_contact("old", "refund please", updated_at=inbox.ago(days=120)),
            # Served (updated recently), but created before the limit.
            social_contact(
                "created-long-ago", "refund!", created_at=inbox.ago(days=95), updated_at=inbox.ago(days=10)
            ),
            # Served (the limit's own day), but an hour before the limit itself.
            social_contact("limit-day", "cancel it", updated_at=limit - timedelta(hours=1)),
            social_contact("inside", "hello", updated_at=inbox.ago(days=89)),
            # Updated after the window's end: in the future, or inside the settling minute.
            social_contact("future", "hi", updated_at=NOW + timedelta(minutes=30)),
            social_contact("settling", "hi", updated_at=NOW - timedelta(seconds=30)),
            # Updated inside the window, created after it: a time that cannot be right.
            social_contact(
                "created-later", "hi", created_at=NOW + timedelta(hours=1), updated_at=inbox.ago(minutes=20)
            ),
        ]
    )

    result = inbox.run()

    assert inbox.upserted_ids() == ["inside"]
    assert result["dropped"] == {"in_the_future": 1, "older_than_retention": 2}
    assert decisions(inbox, "created-later") == [
        {
            "workflow": "social-inbox",
            "subject": "created-later",
            "action": "dropped",
            "outcome": "skipped",
            "reason": "in_the_future",
            "details": {
                "created_at": position_text(NOW + timedelta(hours=1)),
                "updated_at": position_text(inbox.ago(minutes=20)),
            },
            "correlation_id": result["run_id"],
        }
    ]
    assert result["window_from"] == position_text(limit)
    query = inbox.listing_requests()[0]["query"]
    assert (query["date[from]"], query["date[to]"]) == ("2025-12-10", "2026-03-10")
    for subject in ("created-long-ago", "limit-day"):
        assert [(r["action"], r["reason"]) for r in inbox.audit(subject)] == [
            ("dropped", "older_than_retention")
        ]

    inbox.clock.advance(hours=1)
    inbox.run()

    assert inbox.upserted_ids() == ["inside", "settling", "future"]


def test_the_retention_is_configurable(inbox):
    inbox.cxone.load_contacts(
        [
            social_contact("31-days", "hello", updated_at=inbox.ago(days=31)),
            social_contact("29-days", "hello", updated_at=inbox.ago(days=29)),
        ]
    )

    result = inbox.run(INBOX_RETENTION_DAYS="30")

    assert inbox.upserted_ids() == ["29-days"]
    assert result["window_from"] == position_text(NOW - timedelta(days=30))


def test_an_updated_conversation_is_re_upserted_once_and_an_unchanged_one_never(inbox):
    contacts = [
        social_contact(f"c-{n}", "Thanks for the quick answer", updated_at=inbox.ago(minutes=30 - n))
        for n in range(3)
    ]
    inbox.cxone.load_contacts(contacts)
    inbox.run()
    assert inbox.tickets()["c-1"]["priority"] == "LOW"

    inbox.clock.advance(minutes=10)
    contacts[1] = social_contact(
        "c-1",
        "Thanks for the quick answer",
        created_at=inbox.ago(minutes=39),
        updated_at=inbox.ago(minutes=2),
    )
    contacts[1]["messages"].append(
        {
            "id": "c-1-in-2",
            "direction": "inbound",
            "createdAt": contacts[1]["updatedAt"],
            "messageContent": {"type": "TEXT", "payload": {"text": "Actually it is broken again"}},
        }
    )
    inbox.cxone.load_contacts(contacts)
    second = inbox.run()
    inbox.clock.advance(minutes=10)
    third = inbox.run()

    assert [[t["external_id"] for t in call] for call in inbox.ticket_calls()] == [
        ["c-0", "c-1", "c-2"],
        ["c-1"],
    ]
    assert (second["conversations"], third["conversations"]) == (1, 0)
    tickets = inbox.tickets()
    assert len(tickets) == 3  # upserted, not duplicated
    assert tickets["c-1"]["id"] == "social-c-1"
    assert tickets["c-1"]["priority"] == "HIGH"
    assert tickets["c-1"]["keywords"] == ["broken"]


def test_a_ticketing_outage_stops_the_run_and_the_next_run_upserts_only_what_did_not_land(inbox):
    contacts = backlog(inbox, 120)
    # The last page's chunk: the listing is read to its end, yet the checkpoint must not pass it.
    inbox.ticketing.add_fault(status=503, body_contains='"c-110"', path_prefix="/api/v1/tickets")

    first = inbox.run()

    assert (first["outcome"], first["reason"], first["conversations"]) == (
        "incomplete",
        "ticketing unavailable",
        100,
    )
    assert decisions(inbox, "c-100") == [
        {
            "workflow": "social-inbox",
            "subject": "c-100",
            "action": "ticketing_failed",
            "outcome": "retry",
            "reason": "ticketing: POST /api/v1/tickets/batch_upsert gave up after HTTP 503 (HTTP 503)",
            "correlation_id": first["run_id"],
        }
    ]
    assert decisions(inbox, "c-110") == []  # not sent, not decided: the next run's
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None and checkpoint.seen_at_position == ("c-099",)
    inbox.ticketing.clear_faults()
    second = inbox.run()

    assert second["outcome"] == "completed"
    assert once_each(inbox) == Counter({contact["id"]: 1 for contact in contacts})


def test_a_ticket_the_ticketing_system_refuses_is_audited_and_does_not_hold_back_its_chunk(inbox):
    contacts = backlog(inbox, 60)
    inbox.ticketing.add_fault(status=400, body_contains='"c-007"', path_prefix="/api/v1/tickets")

    result = inbox.run()

    assert result["outcome"] == "completed"
    assert (result["conversations"], result["tickets"]) == (60, 59)
    assert set(inbox.tickets()) == {contact["id"] for contact in contacts} - {"c-007"}
    [refused] = decisions(inbox, "c-007")
    assert refused == {
        "workflow": "social-inbox",
        "subject": "c-007",
        "action": "ticket_refused",
        "outcome": "permanent_failure",
        "reason": "ticketing: POST /api/v1/tickets/batch_upsert refused (HTTP 400)",
        "details": {
            "priority": "MEDIUM",
            "sentiment_score": -0.296,
            "keywords": [],
            "language": "en",
            "shouting": False,
            "raised_for_shouting": False,
            "channel": "WHATSAPP",
            "updated_at": position_text(inbox.ago(minutes=60 + 1 - 7)),
            "status": 400,
        },
        "correlation_id": result["run_id"],
    }
    # The refused chunk was retried ticket by ticket; the next chunk went whole.
    assert [len(call) for call in inbox.ticket_calls()] == [1] * 49 + [10]
    assert inbox.run()["conversations"] == 0  # passed over for good, not retried every run


def test_a_refused_chunk_retried_ticket_by_ticket_stops_at_the_first_that_fails_for_a_passing_reason(
    inbox, capsys
):
    contacts = backlog(inbox, 50)
    # Chunks of 20: the second is refused (c-027), and alone c-027 is refused again, while c-030
    # meets an outage. Nothing after c-030 is sent: neither the rest of its chunk nor the third.
    inbox.ticketing.add_fault(status=400, body_contains='"c-027"', path_prefix="/api/v1/tickets")
    inbox.ticketing.add_fault(status=503, body_contains='"c-030"', path_prefix="/api/v1/tickets")

    first = inbox.run(TICKET_CHUNK_SIZE="20")

    assert (first["outcome"], first["reason"], first["conversations"], first["tickets"]) == (
        "incomplete",
        "ticketing unavailable",
        30,
        29,
    )
    sent = [[t["external_id"] for t in r["body"]] for r in inbox.ticketing.requests(path_prefix=TICKETS_PATH)]
    chunk_2 = [f"c-{n:03d}" for n in range(20, 40)]
    assert sent[:2] == [[f"c-{n:03d}" for n in range(20)], chunk_2]
    assert sent[2:12] == [[f"c-{n:03d}"] for n in range(20, 30)]
    assert set(map(tuple, sent[12:])) == {("c-030",)}  # retried alone, never past it
    assert [len(call) for call in inbox.ticket_calls()] == [20] + [1] * 9
    assert inbox_metrics(capsys.readouterr().out)["TicketsUpserted"] == [20] + [1] * 9
    assert [r["action"] for r in inbox.audit("c-027")] == ["ticket_refused"]
    assert [(r["action"], r["reason"]) for r in inbox.audit("c-030")] == [
        ("ticketing_failed", "ticketing: POST /api/v1/tickets/batch_upsert gave up after HTTP 503 (HTTP 503)")
    ]
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None and checkpoint.seen_at_position == ("c-029",)

    inbox.ticketing.clear_faults()
    second = inbox.run(TICKET_CHUNK_SIZE="20")

    assert (second["outcome"], second["conversations"]) == ("completed", 20)
    assert [len(call) for call in inbox.ticket_calls()][10:] == [20]
    assert set(inbox.tickets()) == {contact["id"] for contact in contacts} - {"c-027"}


def test_a_conversations_many_messages_are_read_over_pages_of_the_messages_listing(inbox):
    contact = social_contact("c-long", None, created_at=inbox.ago(hours=2), updated_at=inbox.ago(minutes=5))
    # 60 inbound messages a minute apart, listed newest first: more than a page of 50.
    contact["messages"] = [
        {
            "id": f"c-long-in-{n:02d}",
            "direction": "inbound",
            "createdAt": position_text(inbox.ago(minutes=90 - n)),
            "messageContent": {"type": "TEXT", "payload": {"text": f"part {n}"}},
        }
        for n in reversed(range(60))
    ]
    inbox.cxone.load_contacts([contact])

    inbox.run()

    assert inbox.tickets()["c-long"]["description"] == "\n".join(f"part {n}" for n in range(60))
    first, second = inbox.cxone.requests(path_prefix="/dfo/3.0/messages")
    assert first["query"] == {"contactId[]": "c-long", "direction": "inbound"}
    assert set(second["query"]) == {"scrollToken"}


def test_every_conversation_and_every_run_is_audited_without_the_customers_words(inbox, captured_logs):
    inbox.cxone.load_contacts(
        [
            social_contact(
                "c-pii",
                "Call me on +14155552671, my refund never came",
                updated_at=inbox.ago(minutes=5),
                channel="WHATSAPP",
            ),
            social_contact("c-old", "hello", created_at=inbox.ago(days=100), updated_at=inbox.ago(days=3)),
            # Served, but with no id the relay could file it under.
            social_contact("", "hello", updated_at=inbox.ago(minutes=4)),
        ]
    )

    def remaining() -> float:
        # The run takes 1.2345 s by its stopwatch: from its start to the first listing.
        if len(inbox.listing_requests()) == 1 and inbox.stopwatch.now == NOW:
            inbox.stopwatch.advance(seconds=1.2345)
        return 60.0

    result = inbox.run(ScriptedContext(remaining))

    run_id = result["run_id"]
    score = inbox.tickets()["c-pii"]["sentiment_score"]
    assert decisions(inbox, "c-pii") == [
        {
            "workflow": "social-inbox",
            "subject": "c-pii",
            "action": "ticket_upserted",
            "outcome": "ok",
            "details": {
                "priority": "HIGH",
                "sentiment_score": score,
                "keywords": ["refund"],
                "language": "en",
                "shouting": False,
                "raised_for_shouting": False,
                "channel": "WHATSAPP",
                "updated_at": position_text(inbox.ago(minutes=5)),
            },
            "correlation_id": run_id,
        }
    ]
    assert decisions(inbox, "c-old") == [
        {
            "workflow": "social-inbox",
            "subject": "c-old",
            "action": "dropped",
            "outcome": "skipped",
            "reason": "older_than_retention",
            "details": {
                "created_at": position_text(inbox.ago(days=100)),
                "updated_at": position_text(inbox.ago(days=3)),
            },
            "correlation_id": run_id,
        }
    ]
    details = {
        "pages": 1,
        "conversations": 1,
        "by_priority": {"HIGH": 1},
        "tickets": 1,
        "dropped": {"older_than_retention": 1, "unreadable": 1},
        "window_from": position_text(NOW - timedelta(days=90)),
        "window_to": position_text(NOW - SETTLE),
        "checkpoint": position_text(NOW - SETTLE),
        "checkpoint_lag_seconds": 60.0,
        "duration_ms": 1234,
    }
    assert decisions(inbox, run_id) == [
        {
            "workflow": "social-inbox",
            "subject": run_id,
            "action": "run_completed",
            "outcome": "ok",
            "details": details,
            "correlation_id": run_id,
        }
    ]
    assert result == {"run_id": run_id, "outcome": "completed", "reason": None} | details
    assert logged(captured_logs, "inbox pull run finished") == [
        ("INFO", {"run_id": run_id, "outcome": "run_completed"} | details)
    ]
    assert logged(captured_logs, "unreadable contacts in the listing") == [("WARNING", {"count": 1})]
    everything = repr(inbox.audit()) + captured_logs.getvalue()
    assert "4155552671" not in everything
    assert "my refund never came" not in everything
    assert "Bearer" not in everything and "relay-secret" not in everything


def test_without_ticketing_conversations_are_classified_and_audited(inbox):
    backlog(inbox, 3)

    result = inbox.run(TICKETING_BASE_URL="")

    assert inbox.ticket_calls() == []
    assert (result["conversations"], result["tickets"]) == (3, 0)
    assert decisions(inbox, "c-002") == [
        {
            "workflow": "social-inbox",
            "subject": "c-002",
            "action": "classified",
            "outcome": "ok",
            "details": {
                "priority": "HIGH",
                "sentiment_score": 0.0772,
                "keywords": ["immediately", "refund"],
                "language": "en",
                "shouting": False,
                "raised_for_shouting": False,
                "channel": "INSTAGRAM",
                "updated_at": position_text(inbox.ago(minutes=2)),
            },
            "correlation_id": result["run_id"],
        }
    ]


def test_paging_stops_at_the_first_page_that_reaches_past_the_window(inbox):
    due = [social_contact(f"due-{n:02d}", "hi", updated_at=inbox.ago(minutes=70 - n)) for n in range(60)]
    ahead = [
        social_contact(f"ahead-{n:02d}", "hi", updated_at=NOW + timedelta(minutes=n + 1)) for n in range(60)
    ]
    # An item without an id on each page: counted across pages.
    unreadable = [social_contact("", "hi", updated_at=inbox.ago(minutes=m)) for m in (69.5, 5)]
    inbox.cxone.load_contacts(ahead + due + unreadable)

    result = inbox.run()

    assert (result["outcome"], result["pages"], result["conversations"]) == ("completed", 2, 60)
    assert result["dropped"] == {"unreadable": 2}
    assert len(inbox.listing_requests()) == 2  # the third page holds only later contacts
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None and checkpoint.position == position_text(NOW - SETTLE)


def test_a_checkpoint_ahead_of_a_clock_that_stepped_back_stays_put_and_takes_nothing(inbox, capsys):
    backlog(inbox, 3)
    ahead = position_text(NOW + timedelta(hours=1))
    inbox.checkpoints().save(CHECKPOINT, ahead, ["later"], expected_version=0)

    result = inbox.run()

    assert (result["outcome"], result["pages"], result["conversations"]) == ("completed", 1, 0)
    assert (result["window_from"], result["window_to"], result["checkpoint"]) == (
        ahead,
        position_text(NOW - SETTLE),
        ahead,
    )
    assert result["checkpoint_lag_seconds"] == 0.0
    assert inbox_metrics(capsys.readouterr().out)["CheckpointLag"] == [0.0]
    checkpoint = inbox.checkpoint()
    assert checkpoint is not None
    assert (checkpoint.position, checkpoint.seen_at_position, checkpoint.version) == (ahead, ("later",), 2)
    [listing] = inbox.listing_requests()
    assert (listing["query"]["date[from]"], listing["query"]["date[to]"]) == ("2026-03-10", "2026-03-10")
    # Nothing to take: no messages are read, no ticket is sent.
    assert inbox.cxone.requests(path_prefix="/dfo/3.0/messages") == []
    assert inbox.ticketing.requests(path_prefix=TICKETS_PATH) == []


def test_a_run_without_time_for_a_page_reads_nothing_and_leaves_the_checkpoint(inbox):
    backlog(inbox, 10)

    result = inbox.run(ScriptedContext(lambda: 17.9))  # 15 s a page + 3 s reserve: not quite

    assert (result["outcome"], result["reason"], result["pages"]) == ("incomplete", "time budget spent", 0)
    assert inbox.listing_requests() == []
    assert inbox.checkpoint() is None
    assert inbox.run(ScriptedContext(lambda: 18.0))["conversations"] == 10  # exactly enough


def test_a_crashed_runs_lease_holds_up_the_next_run_only_until_it_lapses(inbox):
    backlog(inbox, 5)
    table = DynamoTable(inbox.dynamodb, inbox.stack.tables["StateTable"])
    assert Lease(table, LEASE_PURPOSE, 300, clock=inbox.clock, holder="crashed").acquire(CHECKPOINT)

    held = inbox.run()
    inbox.clock.advance(seconds=301)
    lapsed = inbox.run()

    assert (held["outcome"], lapsed["outcome"]) == ("skipped", "completed")
    assert lapsed["conversations"] == 5


def test_a_lease_that_cannot_be_released_is_logged_and_the_run_still_answers(
    inbox, monkeypatch, captured_logs
):
    backlog(inbox, 5)

    release = Lease.release

    def unreleasable(self: Lease, name: str) -> bool:
        if self._purpose == LEASE_PURPOSE:  # the pull's lease; the token's works
            raise RuntimeError("the state table is unavailable")
        return release(self, name)

    monkeypatch.setattr(Lease, "release", unreleasable)

    result = inbox.run()

    assert (result["outcome"], result["conversations"]) == ("completed", 5)
    assert logged(captured_logs, "could not release the inbox pull lease") == [
        ("ERROR", {"run_id": result["run_id"]})
    ]
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    [failure] = [line for line in lines if line["message"] == "could not release the inbox pull lease"]
    assert failure["exception_name"] == "RuntimeError"


@pytest.mark.parametrize(("elapsed", "second_outcome"), [(89, "skipped"), (91, "completed")])
def test_a_runs_lease_lasts_its_invocation_plus_a_margin(inbox, elapsed, second_outcome):
    backlog(inbox, 80)
    second: list[dict[str, Any]] = []

    def remaining() -> float:
        # 60 s left when the first run starts: its lease lasts those and a 30 s margin.
        if len(inbox.ticket_calls()) == 1 and not second:
            inbox.clock.advance(seconds=elapsed)
            second.append(inbox.run())
        return 60.0

    first = inbox.run(ScriptedContext(remaining))

    assert second[0]["outcome"] == second_outcome
    if second_outcome == "completed":
        # A run that outlived its lease (it cannot, in Lambda) still cannot undo the newer one.
        assert (first["outcome"], first["reason"]) == ("incomplete", "checkpoint moved by another run")
    else:
        assert first["outcome"] == "completed"
    assert set(inbox.upserted_ids()) == {f"c-{n:03d}" for n in range(80)}
