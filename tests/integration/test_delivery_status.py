"""Delivery status through its handlers: signed reports in (valid, wrong, stale, altered, rotated
secrets), the per-message state machine (duplicates and regressions ignored, unknown ids counted),
the latency metric, and final statuses passed on to CXone and to the send's webhookUrl."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from cxone_relay.platform.data.consent import ConsentStatus
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.data.messages import (
    HeldMessages,
    MessageRecord,
    MessageStatus,
    MessageStatusStore,
    Transition,
)
from cxone_relay.workflows.outbound_sms.signatures import signature
from local.builders import emf_metrics, emf_units
from tests.conftest import WEBHOOK_SECRET
from tests.dashboard import assert_matches_dashboard
from tests.integration.outbound_harness import (
    STATUS_PATH_PREFIX,
    Clock,
    OutboundHarness,
    logged,
    metric_values,
)

NEW_YORK = "+12125551234"
OUR_NUMBER = "+14155550100"
NOON_NEW_YORK = datetime(2027, 1, 15, 17, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON_NEW_YORK)


@pytest.fixture
def outbound(stack, cxone_sim, ticketing_sim, monkeypatch, clock) -> OutboundHarness:
    harness = OutboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch, clock)
    harness.consent(NEW_YORK, ConsentStatus.OPTED_IN, NOON_NEW_YORK - timedelta(days=1))
    return harness


def sent_message(outbound: OutboundHarness, webhook: bool = True) -> str:
    """One message sent through CXone at noon; its id."""
    body = {"to": [NEW_YORK], "from": OUR_NUMBER, "text": "Hi", "campaignId": "c-1"}
    if webhook:
        body["webhookUrl"] = f"{outbound.ticketing.url}/hooks/status"
    _, answer = outbound.send(body)
    outbound.deliver()
    return str(answer["messages"][0]["messageId"])


def report(message_id: str, status: str, at: datetime, **fields: object) -> dict:
    return {"messageId": message_id, "status": status, "to": NEW_YORK, "timestamp": at.isoformat()} | fields


def later(seconds: float) -> datetime:
    return NOON_NEW_YORK + timedelta(seconds=seconds)


def decisions(outbound: OutboundHarness, message_id: str) -> list[dict]:
    return outbound.decisions(message_id, "delivery-status")


def correlation_of(outbound: OutboundHarness) -> str:
    """The correlation id of the one report waiting on the status queue."""
    [queued] = outbound.queued("DeliveryStatusQueue")
    return str(queued["correlation_id"])


def status_requests(outbound: OutboundHarness) -> list[dict]:
    """CXone status updates as asked for: path, idempotency key and body."""
    return [
        (r["method"], r["path"], r["headers"]["idempotency-key"], r["body"])
        for r in outbound.cxone.requests(path_prefix=STATUS_PATH_PREFIX)
    ]


# Signatures -------------------------------------------------------------------------------------


def test_a_validly_signed_report_is_queued(outbound):
    message_id = sent_message(outbound)

    status, answer = outbound.report(report(message_id, "delivered", later(5)))

    assert (status, answer) == (202, {"status": "queued", "messageId": message_id})
    [queued] = outbound.queued("DeliveryStatusQueue")
    assert (queued["message_id"], queued["status"], queued["to"]) == (message_id, "delivered", NEW_YORK)


@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "not-the-secret"},
        {"signed_at": NOON_NEW_YORK.timestamp() - 301},
        {"signed_at": NOON_NEW_YORK.timestamp() + 301},
        {"signed_body": b'{"messageId": "out-other", "status": "delivered"}'},
        {"signature": ""},
        {"signature": "t=abc,v1=00"},
        {"signature": "v1=" + "0" * 64},
    ],
    ids=["wrong secret", "stale", "from the future", "altered body", "missing", "malformed", "no t"],
)
def test_reports_not_validly_signed_are_401_and_change_nothing(outbound, tamper):
    message_id = sent_message(outbound)
    before = outbound.status_of(message_id)
    audit_before = len(outbound.audit())

    status, answer = outbound.report(report(message_id, "delivered", later(5)), **tamper)

    assert (status, answer["error"]) == (401, "unauthorized")
    assert outbound.depth("DeliveryStatusQueue") == 0
    assert outbound.status_of(message_id) == before
    assert len(outbound.audit()) == audit_before


def test_a_signature_just_inside_the_five_minutes_is_accepted(outbound):
    message_id = sent_message(outbound)
    assert (
        outbound.report(report(message_id, "sent", later(1)), signed_at=NOON_NEW_YORK.timestamp() - 300)[0]
        == 202
    )
    assert (
        outbound.report(report(message_id, "sent", later(2)), signed_at=NOON_NEW_YORK.timestamp() + 300)[0]
        == 202
    )


def test_both_secrets_are_accepted_during_a_rotation(outbound):
    message_id = sent_message(outbound)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=outbound.stack.secrets["DeliveryWebhookSecret"],
        SecretString=json.dumps({"current": "the-new-secret-0004", "previous": WEBHOOK_SECRET}),
    )
    parameters.clear_caches()  # the functions re-read it within five minutes

    assert outbound.report(report(message_id, "sent", later(1)), secret="the-new-secret-0004")[0] == 202
    assert outbound.report(report(message_id, "sent", later(2)), secret=WEBHOOK_SECRET)[0] == 202
    assert outbound.report(report(message_id, "sent", later(3)), secret="an-old-secret")[0] == 401


def test_a_signed_report_with_an_invalid_field_is_422_naming_it(outbound):
    status, answer = outbound.report(
        {"messageId": "out-1", "status": "read", "to": NEW_YORK, "timestamp": "now"}
    )
    assert status == 422
    assert sorted(p["field"] for p in answer["fields"]) == ["status", "timestamp"]
    assert outbound.depth("DeliveryStatusQueue") == 0


# The state machine ---------------------------------------------------------------------------------


def test_delivered_moves_the_status_forward_emits_latency_and_goes_to_cxone_and_the_webhook(
    outbound, clock, capsys
):
    message_id = sent_message(outbound)
    capsys.readouterr()
    outbound.report(report(message_id, "delivered", later(4.5)))
    correlation_id = correlation_of(outbound)
    clock.set(later(9))

    outbound.deliver_statuses()

    record = outbound.status_of(message_id)
    assert (record["status"], record["forwarded_to_cxone"], record["forwarded_to_webhook"]) == (
        "delivered",
        "delivered",
        "delivered",
    )
    [update] = outbound.cxone_statuses()
    assert (update["idOnExternalPlatform"], update["status"], update["updatedAt"]) == (
        record["cxone_external_id"],
        "delivered",
        "2027-01-15T17:00:04.500Z",
    )
    [hook] = outbound.hooks()
    assert hook["body"] == {
        "messageId": message_id,
        "campaignId": "c-1",
        "status": "delivered",
        "to": NEW_YORK,
        "timestamp": "2027-01-15T17:00:04.500Z",
    }
    t, v1 = (part.split("=", 1)[1] for part in hook["headers"]["x-signature"].split(","))
    body = json.dumps(hook["body"], separators=(",", ":")).encode()
    assert int(t) == int(later(9).timestamp())
    assert v1 == signature(WEBHOOK_SECRET, int(t), body)
    assert (hook["headers"]["content-type"], hook["headers"]["idempotency-key"]) == (
        "application/json",
        f"{message_id}:delivered",
    )
    assert status_requests(outbound) == [
        (
            "PUT",
            f"{STATUS_PATH_PREFIX}{record['cxone_external_id']}/status",
            f"{message_id}:status:delivered",
            {"status": "delivered", "updatedAt": "2027-01-15T17:00:04.500Z"},
        )
    ]
    reported = {"reported": "delivered", "timestamp": "2027-01-15T17:00:04.500Z"}
    common = {"phone_masked": "***1234", "correlation_id": correlation_id}
    assert decisions(outbound, message_id) == [
        {"action": "status_updated", "outcome": "delivered", "details": reported | {"previous": "sent"}}
        | common,
        {"action": "cxone_status_updated", "outcome": "delivered", "details": reported} | common,
        {"action": "status_webhook_delivered", "outcome": "ok", "details": reported | {"status": 204}}
        | common,
    ]
    assert outbound.consumer_outcomes("delivery-status") == [
        {
            "id": f"{message_id}:delivered:2027-01-15T17:00:04.500Z",
            "transition": "applied",
            "status": "delivered",
        }
    ]
    output = capsys.readouterr().out
    assert metric_values(output, "DeliveryLatency") == [([4500.0], {})]
    assert emf_units(output)["DeliveryLatency"] == "Milliseconds"
    assert metric_values(output, "StatusesForwarded") == [
        ([1.0], {"destination": "cxone"}),
        ([1.0], {"destination": "webhook"}),
    ]


def test_undelivered_and_failed_go_to_cxone_as_failed_with_the_reason(outbound):
    first, second = sent_message(outbound), sent_message(outbound, webhook=False)
    outbound.report(report(first, "undelivered", later(3), error="30005 unknown handset"))
    outbound.report(report(second, "failed", later(3), error="30007 carrier filtered"))

    outbound.deliver_statuses()

    assert sorted((u["status"], u["reason"]) for u in outbound.cxone_statuses()) == [
        ("failed", "30005 unknown handset"),
        ("failed", "30007 carrier filtered"),
    ]
    record = outbound.status_of(first)
    assert (record["status"], record["reason"], record["status_at"], record["forwarded_to_cxone"]) == (
        "undelivered",
        "30005 unknown handset",
        "2027-01-15T17:00:03.000Z",
        "undelivered",
    )
    assert [(d["action"], d["outcome"]) for d in decisions(outbound, first)] == [
        ("status_updated", "undelivered"),
        ("cxone_status_updated", "failed"),
        ("status_webhook_delivered", "ok"),
    ]
    # Only the send that named a webhookUrl hears of it, with the error.
    assert [hook["body"] for hook in outbound.hooks()] == [
        {
            "messageId": first,
            "campaignId": "c-1",
            "status": "undelivered",
            "to": NEW_YORK,
            "timestamp": "2027-01-15T17:00:03.000Z",
            "error": "30005 unknown handset",
        }
    ]
    assert "forwarded_to_webhook" not in outbound.status_of(second)


def test_duplicates_and_regressions_are_audited_but_never_move_the_status_back(outbound, capsys):
    message_id = sent_message(outbound)
    # The same report twice is one report (its id is message, status and time); a second
    # "delivered" at another time is a duplicate of the status.
    # A "sent" for a message that is sent is a duplicate too, and not final: nothing to pass on.
    steps = (
        ("sent", 0.5),
        ("delivered", 5),
        ("delivered", 5),
        ("delivered", 5.5),
        ("sent", 1),
        ("queued", 0.5),
        ("failed", 6),
    )
    correlations = []
    for status, seconds in steps:
        outbound.report(report(message_id, status, later(seconds)))
        correlations.append(correlation_of(outbound))
        outbound.deliver_statuses()

    assert outbound.status_of(message_id)["status"] == "delivered"
    assert len(outbound.cxone_statuses()) == 1
    assert len(outbound.hooks()) == 1
    actions = [(r["action"], r["outcome"]) for r in outbound.audit(message_id, workflow="delivery-status")]
    assert actions == [
        ("status_duplicate", "ignored"),
        ("status_updated", "delivered"),
        ("cxone_status_updated", "delivered"),
        ("status_webhook_delivered", "ok"),
        ("replayed", "ok"),  # the same report again: answered by idempotency, audited all the same
        ("status_duplicate", "ignored"),
        ("status_regression", "ignored"),
        ("status_regression", "ignored"),
        ("status_regression", "ignored"),
    ]
    [replayed] = [d for d in decisions(outbound, message_id) if d["action"] == "replayed"]
    assert (replayed["phone_masked"], replayed["correlation_id"]) == ("***1234", correlations[2])
    ignored = [d for d in decisions(outbound, message_id) if d["outcome"] == "ignored"]
    assert [(d["details"]["reported"], d["details"]["current"]) for d in ignored] == [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sent", "delivered"),
        ("queued", "delivered"),
        ("failed", "delivered"),
    ]
    assert "reason" not in ignored[0]
    outcomes = outbound.consumer_outcomes("delivery-status")
    assert sorted((o["id"].split(":", 1)[1], o["transition"], o["status"]) for o in outcomes) == [
        ("delivered:2027-01-15T17:00:05.000Z", "applied", "delivered"),
        ("delivered:2027-01-15T17:00:05.500Z", "duplicate", "delivered"),
        ("failed:2027-01-15T17:00:06.000Z", "regression", "delivered"),
        ("queued:2027-01-15T17:00:00.500Z", "regression", "delivered"),
        ("sent:2027-01-15T17:00:00.500Z", "duplicate", "sent"),
        ("sent:2027-01-15T17:00:01.000Z", "regression", "delivered"),
    ]
    assert [
        dimensions for _, dimensions in metric_values(capsys.readouterr().out, "DeliveryReportsIgnored")
    ] == [
        {"reason": "duplicate"},
        {"reason": "duplicate"},
        {"reason": "regression"},
        {"reason": "regression"},
        {"reason": "regression"},
    ]


def test_a_delivered_report_ahead_of_sent_is_applied_and_the_late_sent_ignored(outbound):
    message_id = sent_message(outbound, webhook=False)
    outbound.report(report(message_id, "delivered", later(3)))
    outbound.deliver_statuses()
    outbound.report(report(message_id, "sent", later(1)))
    outbound.deliver_statuses()
    assert outbound.status_of(message_id)["status"] == "delivered"


def test_a_delivery_reported_before_the_send_time_counts_no_negative_latency(outbound, capsys):
    message_id = sent_message(outbound, webhook=False)
    capsys.readouterr()
    outbound.report(report(message_id, "delivered", later(-2)))  # the carrier's clock is behind

    outbound.deliver_statuses()

    assert metric_values(capsys.readouterr().out, "DeliveryLatency") == [([0.0], {})]


def test_a_delivery_for_a_message_not_yet_marked_sent_has_no_latency_and_uses_our_id(outbound, capsys):
    """The report overtook the consumer's record of the send: no sent time, no CXone id yet."""
    _, answer = outbound.send({"to": [NEW_YORK], "from": OUR_NUMBER, "text": "Hi", "campaignId": "c-1"})
    message_id = answer["messages"][0]["messageId"]
    capsys.readouterr()
    outbound.report(report(message_id, "delivered", later(2)))

    outbound.deliver_statuses()

    assert outbound.status_of(message_id)["status"] == "delivered"
    assert metric_values(capsys.readouterr().out, "DeliveryLatency") == []
    assert [(path, key) for _, path, key, _ in status_requests(outbound)] == [
        (f"{STATUS_PATH_PREFIX}{message_id}/status", f"{message_id}:status:delivered")
    ]
    assert decisions(outbound, message_id)[0]["details"]["previous"] == "queued"


def test_an_unknown_message_id_or_recipient_is_audited_and_counted(outbound, capsys, captured_logs):
    message_id = sent_message(outbound, webhook=False)
    outbound.report(report("out-nobody", "delivered", later(2)))
    outbound.report(report(message_id, "delivered", later(2)) | {"to": "+12125550100"})
    correlation = {q["message_id"]: q["correlation_id"] for q in outbound.queued("DeliveryStatusQueue")}

    outbound.deliver_statuses()

    assert outbound.cxone_statuses() == []
    assert outbound.status_of(message_id)["status"] == "sent"
    [unknown] = outbound.audit("out-nobody")
    assert (unknown["action"], unknown["reason"]) == ("unknown_message", "unknown message id")
    assert decisions(outbound, message_id) == [
        {
            "action": "unknown_message",
            "outcome": "ignored",
            "reason": "the message went to another number",
            "phone_masked": "***0100",
            "details": {"reported": "delivered", "timestamp": "2027-01-15T17:00:02.000Z"},
            "correlation_id": correlation[message_id],
        }
    ]
    assert sorted(
        (line["level"], line["message_id"], line["reason"])
        for line in logged(captured_logs, "delivery report for an unknown message")
    ) == [
        ("WARNING", message_id, "the message went to another number"),
        ("WARNING", "out-nobody", "unknown message id"),
    ]
    assert sorted(
        (o["id"].split(":")[0], o["transition"], o.get("status"))
        for o in outbound.consumer_outcomes("delivery-status")
    ) == [
        (message_id, "unknown", None),
        ("out-nobody", "unknown", None),
    ]
    unknown = [
        json.loads(line)["DeliveryReportsUnknown"]
        for line in capsys.readouterr().out.splitlines()
        if '"DeliveryReportsUnknown"' in line and "_aws" in line
    ]
    assert unknown == [[1.0, 1.0]]


def test_a_cxone_failure_is_retried_and_passes_the_status_on_once(outbound):
    message_id = sent_message(outbound)
    outbound.cxone.add_fault(status=503, count=10, path_prefix="/dfo/3.0/channels/sms-channel/messages/")
    outbound.report(report(message_id, "delivered", later(3)))

    first = outbound.deliver_statuses()
    assert first.failed == 1
    assert outbound.status_of(message_id)["status"] == "delivered"
    assert "forwarded_to_cxone" not in outbound.status_of(message_id)
    assert outbound.hooks() == []
    outbound.cxone.clear_faults()
    second = outbound.deliver_statuses()

    assert (second.succeeded, second.failed) == (1, 0)
    assert len(outbound.cxone_statuses()) == 1
    assert len(outbound.hooks()) == 1
    assert [(d["action"], d["outcome"], d.get("reason")) for d in decisions(outbound, message_id)] == [
        ("status_updated", "delivered", None),
        (
            "cxone_status_failed",
            "retry",
            f"cxone: PUT {STATUS_PATH_PREFIX}{outbound.status_of(message_id)['cxone_external_id']}/status"
            " gave up after HTTP 503 (HTTP 503)",
        ),
        ("status_duplicate", "ignored", None),
        ("cxone_status_updated", "delivered", None),
        ("status_webhook_delivered", "ok", None),
    ]


def test_a_status_cxone_refuses_is_dead_lettered_and_never_reaches_the_webhook(outbound):
    message_id = sent_message(outbound)
    outbound.cxone.add_fault(status=400, path_prefix=STATUS_PATH_PREFIX)
    outbound.report(report(message_id, "failed", later(3)))

    result = outbound.deliver_statuses()

    assert (result.succeeded, result.failed) == (1, 0)
    [(body, attributes)] = outbound.dead_letters("DeliveryStatusDLQ")
    assert (json.loads(body)["message_id"], attributes["failure_class"]) == (
        message_id,
        "PermanentUpstreamError",
    )
    external_id = outbound.status_of(message_id)["cxone_external_id"]
    assert [(d["action"], d["outcome"], d.get("reason")) for d in decisions(outbound, message_id)][1] == (
        "cxone_status_failed",
        "permanent_failure",
        f"cxone: PUT {STATUS_PATH_PREFIX}{external_id}/status refused (HTTP 400)",
    )
    assert outbound.hooks() == []


def test_a_webhook_that_fails_is_audited_and_counted_and_the_report_done(outbound, capsys):
    message_id = sent_message(outbound)
    outbound.ticketing.add_fault(status=500, path_prefix="/hooks/")
    outbound.report(report(message_id, "failed", later(3)))

    result = outbound.deliver_statuses()

    assert (result.succeeded, result.failed) == (1, 0)
    assert [u["status"] for u in outbound.cxone_statuses()] == ["failed"]
    assert outbound.audit(message_id, workflow="delivery-status")[-1]["action"] == "status_webhook_failed"
    assert "StatusWebhookFailed" in [name for name, _ in emf_metrics(capsys.readouterr().out)]
    [failure] = [d for d in decisions(outbound, message_id) if d["action"] == "status_webhook_failed"]
    assert (failure["outcome"], failure["reason"]) == (
        "failed",
        "status-webhook: POST /hooks/status gave up after HTTP 500 (HTTP 500)",
    )
    record = outbound.status_of(message_id)
    assert (record["forwarded_to_cxone"], record.get("forwarded_to_webhook")) == ("failed", None)


def test_with_no_webhook_secret_the_status_is_not_posted_unsigned():
    """The secret's JSON must name a current secret (wiring refuses it otherwise); should the
    list still come back empty, nothing is posted."""
    from cxone_relay.platform.errors import UpstreamError
    from cxone_relay.platform.transport import TimeBudget
    from cxone_relay.workflows.outbound_sms.status import StatusWebhook

    class NoHttp:
        def request(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("posted without a signature")

    webhook = StatusWebhook(NoHttp(), lambda: [], clock=NOON_NEW_YORK.timestamp)  # type: ignore[arg-type]
    with pytest.raises(UpstreamError, match=r"^status-webhook: no webhook secret to sign with$"):
        webhook.post(
            "https://hooks.example.org/x", {"messageId": "out-1", "status": "failed"}, TimeBudget.fixed(5)
        )


def test_delivery_metrics_match_their_dashboard_queries(outbound, capsys):
    message_id = sent_message(outbound)
    outbound.report(report(message_id, "delivered", later(3)))
    outbound.report(report(message_id, "delivered", later(4)))
    outbound.report(report("out-nobody", "sent", later(3)))
    outbound.report({"messageId": "x"})
    outbound.report(report(message_id, "sent", later(3)), secret="wrong")
    outbound.deliver_statuses()

    emitted = emf_metrics(capsys.readouterr().out)
    assert {name for name, _ in emitted} >= {
        "DeliveryReportsReceived",
        "DeliveryReportsIgnored",
        "DeliveryReportsUnknown",
        "DeliveryReportsInvalid",
        "DeliveryWebhookUnauthenticated",
        "DeliveryLatency",
        "StatusesForwarded",
    }
    assert_matches_dashboard(emitted)


# The state table's records, as the workflow's steps use them ----------------------------------------


def state_stores(outbound: OutboundHarness) -> tuple[MessageStatusStore, HeldMessages]:
    table = DynamoTable(outbound.dynamodb, outbound.stack.tables["StateTable"])
    return MessageStatusStore(table, outbound.clock), HeldMessages(table)


def test_held_messages_are_filed_by_their_utc_minute_on_a_machine_in_another_zone(
    outbound, local_time_not_utc
):
    _, held = state_stores(outbound)

    held.hold("out-h1", datetime(2027, 1, 15, 17, 0, 30, tzinfo=UTC), {"id": "out-h1"})

    assert [item["pk"] for item in outbound.state_items("held#")] == ["held#2027-01-15T17:00"]
    assert [message.message_id for message in held.due_in("2027-01-15T17:00")] == ["out-h1"]


def test_a_message_record_is_kept_90_days_and_its_status_only_moves_forward(
    outbound, clock, local_time_not_utc
):
    store, _ = state_stores(outbound)
    record = MessageRecord(
        message_id="out-m1",
        status=MessageStatus.HELD,
        campaign_id="c-9",
        recipient_hash="hash",
        recipient_masked="***1234",
        status_at="2027-01-15T17:00:00.000Z",
        segments=2,
        webhook_url="https://hooks.example.org/x",
        send_after="2027-01-15T18:00:00.000Z",
    )

    assert (store.create(record), store.create(record)) == (True, False)
    item = outbound.status_of("out-m1")
    assert (item["status"], item["status_rank"], item["expires_at"]) == (
        "held",
        1,
        int(NOON_NEW_YORK.timestamp()) + 90 * 86400,
    )
    assert store.get("out-m1") == record
    assert store.get("out-other") is None

    # Held and queued are both before sending: either may follow the other.
    clock.set(later(60))
    assert store.set_pending("out-m1", MessageStatus.QUEUED, None) is True
    item = outbound.status_of("out-m1")
    assert (item["status"], item["status_at"], item["send_after"]) == (
        "queued",
        "2027-01-15T17:01:00.000Z",
        "2027-01-15T18:00:00.000Z",
    )
    assert store.set_pending("out-m1", MessageStatus.HELD, "2027-01-16T13:00:00.000Z") is True
    assert outbound.status_of("out-m1")["send_after"] == "2027-01-16T13:00:00.000Z"

    transition, sent = store.advance("out-m1", MessageStatus.SENT, "2027-01-15T17:02:00.000Z")
    assert (transition, sent.status, sent.status_at, sent.reason) == (
        Transition.APPLIED,
        MessageStatus.SENT,
        "2027-01-15T17:02:00.000Z",
        None,
    )
    assert outbound.status_of("out-m1")["status_rank"] == 2
    assert store.set_pending("out-m1", MessageStatus.QUEUED, None) is False  # sent is not pending
    assert store.advance("out-m1", MessageStatus.SENT, "2027-01-15T17:03:00.000Z")[0] is Transition.DUPLICATE
    assert (
        store.advance("out-m1", MessageStatus.QUEUED, "2027-01-15T17:03:00.000Z")[0] is Transition.REGRESSION
    )
    transition, failed = store.advance(
        "out-m1", MessageStatus.FAILED, "2027-01-15T17:04:00.000Z", reason="x" * 600
    )
    assert (transition, failed.status, failed.reason) == (Transition.APPLIED, MessageStatus.FAILED, "x" * 500)
    assert store.advance("out-nobody", MessageStatus.SENT, "2027-01-15T17:04:00.000Z") == (
        Transition.UNKNOWN,
        None,
    )
    assert store.set_pending("out-nobody", MessageStatus.QUEUED, None) is False
    # A forward is remembered on the message's record only: none is made for an unknown (or expired) one.
    store.mark_forwarded("out-nobody", "cxone", MessageStatus.DELIVERED)
    assert outbound.state_items("message#out-nobody") == []


def test_a_send_s_details_and_forwarded_statuses_are_kept_beside_the_status(outbound):
    store, _ = state_stores(outbound)
    store.create(
        MessageRecord("out-m2", MessageStatus.QUEUED, "c-9", "hash", "***1234", "2027-01-15T17:00:00.000Z", 1)
    )
    store.advance("out-m2", MessageStatus.DELIVERED, "2027-01-15T17:00:05.000Z")  # the report came first

    store.record_sent("out-m2", "cx-1", None, "2027-01-15T17:00:01.000Z")
    store.mark_forwarded("out-m2", "cxone", MessageStatus.DELIVERED)
    store.mark_forwarded("out-m2", "webhook", MessageStatus.DELIVERED)
    store.record_sent("out-nobody", "cx-2", "ext-2", "2027-01-15T17:00:01.000Z")

    record = store.get("out-m2")
    assert (record.status, record.cxone_id, record.cxone_external_id, record.sent_at) == (
        MessageStatus.DELIVERED,
        "cx-1",
        None,
        "2027-01-15T17:00:01.000Z",
    )
    assert (record.forwarded_to_cxone, record.forwarded_to_webhook) == ("delivered", "delivered")
    assert "cxone_external_id" not in outbound.status_of("out-m2")
    assert outbound.state_items("message#out-nobody") == []


def test_held_messages_are_filed_by_minute_kept_30_days_and_released_once(outbound):
    _, held = state_stores(outbound)
    # 08:00:00.250 in New York: filed and kept in UTC.
    opening = datetime(2027, 1, 15, 8, 0, 0, 250000, tzinfo=ZoneInfo("America/New_York"))
    message = {"id": "out-h2", "to": NEW_YORK, "segments": 2, "ratio": 0.5}
    held.hold("out-h2", opening, message)
    held.hold("out-h1", opening + timedelta(seconds=30), {"id": "out-h1"})
    held.hold("out-h3", opening + timedelta(minutes=1), {"id": "out-h3"})

    [item, _] = outbound.state_items("held#2027-01-15T13:00")
    assert (item["pk"], item["sk"], item["expires_at"]) == (
        "held#2027-01-15T13:00",
        "out-h1",
        int(opening.timestamp()) + 30 + 30 * 86400,
    )
    due = held.due_in("2027-01-15T13:00")
    assert [(h.message_id, h.send_after) for h in due] == [
        ("out-h1", "2027-01-15T13:00:30.250Z"),
        ("out-h2", "2027-01-15T13:00:00.250Z"),
    ]
    assert due[1].message == message  # numbers come back as they went
    assert [h.message_id for h in held.due_in("2027-01-15T13:01")] == ["out-h3"]
    assert (held.release("2027-01-15T13:00", "out-h2"), held.release("2027-01-15T13:00", "out-h2")) == (
        True,
        False,
    )
    assert [h.message_id for h in held.due_in("2027-01-15T13:00")] == ["out-h1"]
