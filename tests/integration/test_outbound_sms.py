"""Outbound SMS through its handlers (API, consumer, release sweep) on moto built from template.yaml
and the CXone simulator, with a fixed clock: consent, quiet hours, holds released when the window
opens, one send per message, Idempotency-Key replays, dry runs and bad input."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from cxone_relay.platform.data.audit import AuditTrail
from cxone_relay.platform.data.consent import ConsentStatus
from cxone_relay.platform.data.dynamo import WriteNotCompleted
from cxone_relay.workflows.outbound_sms.models import OutboundSmsRequest
from local.builders import emf_metrics, emf_units, peek_messages, stored_fields
from local.events import LocalLambdaContext
from tests.dashboard import assert_matches_dashboard
from tests.integration.outbound_harness import Clock, OutboundHarness, logged, metric_values

NEW_YORK = "+12125551234"
SAN_FRANCISCO = "+14155552671"
MIAMI = "+13055551234"
ALASKA = "+19075551234"
STRANGER = "+12125550199"
OPTED_OUT = "+12125550142"
OUR_NUMBER = "+14155550100"
# 15 January 2027, 12:00 in New York (17:00Z): inside every US window but Hawaii's and Alaska's.
NOON_NEW_YORK = datetime(2027, 1, 15, 17, tzinfo=UTC)


def campaign(*to: str, text: str = "Your order has shipped.", **fields: object) -> dict:
    return {"to": list(to), "from": OUR_NUMBER, "text": text, "campaignId": "spring-sale"} | fields


def decisions(outbound: OutboundHarness, subject: str, action: str | None = None) -> list[dict]:
    return outbound.decisions(subject, "outbound-sms", action)


def consumer_outcomes(outbound: OutboundHarness) -> list[dict]:
    return outbound.consumer_outcomes("outbound-sms")


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON_NEW_YORK)


@pytest.fixture
def outbound(stack, cxone_sim, ticketing_sim, monkeypatch, clock) -> OutboundHarness:
    harness = OutboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch, clock)
    for phone in (NEW_YORK, SAN_FRANCISCO, MIAMI, ALASKA):
        harness.consent(phone, ConsentStatus.OPTED_IN, NOON_NEW_YORK - timedelta(days=2))
    harness.consent(OPTED_OUT, ConsentStatus.OPTED_IN, NOON_NEW_YORK - timedelta(days=3))
    harness.consent(OPTED_OUT, ConsentStatus.OPTED_OUT, NOON_NEW_YORK - timedelta(days=1))
    return harness


# The way in --------------------------------------------------------------------------------


def test_a_consented_recipient_in_daytime_is_queued_then_sent_once(outbound, clock, captured_logs, capsys):
    status, answer = outbound.send(campaign(NEW_YORK))

    assert status == 202
    [message] = answer["messages"]
    assert answer == {
        "status": "queued",
        "encoding": "GSM-7",
        "segments": 1,
        "messages": [{"to": NEW_YORK, "messageId": message["messageId"], "status": "queued"}],
        "refused": [],
    }
    assert message["messageId"].startswith("out-")
    [queued] = outbound.queued()
    assert (queued["id"], queued["to"], queued["sender"], queued["text"]) == (
        message["messageId"],
        NEW_YORK,
        OUR_NUMBER,
        "Your order has shipped.",
    )
    assert outbound.status_of(message["messageId"])["status"] == "queued"
    clock.set(NOON_NEW_YORK + timedelta(seconds=7))
    capsys.readouterr()

    result = outbound.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    [sent] = outbound.sent()
    assert sent["recipients"] == [{"idOnExternalPlatform": NEW_YORK, "isPrimary": True}]
    assert sent["thread"] == {"idOnExternalPlatform": NEW_YORK}
    assert sent["messageContent"] == {"type": "TEXT", "payload": {"text": "Your order has shipped."}}
    [request] = outbound.send_requests()
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["idempotency-key"] == f"{message['messageId']}:send"
    record = outbound.status_of(message["messageId"])
    assert (record["status"], record["cxone_external_id"], record["recipient_masked"]) == (
        "sent",
        sent["idOnExternalPlatform"],
        "***1234",
    )
    assert (record["cxone_id"], record["sent_at"], record["status_at"]) == (
        sent["id"],
        "2027-01-15T17:00:07.000Z",
        "2027-01-15T17:00:07.000Z",
    )
    assert outbound.audit_actions(message["messageId"]) == [("queued", "accepted"), ("sent", "ok")]
    assert decisions(outbound, message["messageId"], "sent") == [
        {
            "action": "sent",
            "outcome": "ok",
            "phone_masked": "***1234",
            "details": {"campaign_id": "spring-sale", "cxone_id": sent["id"], "segments": 1},
            "correlation_id": queued["correlation_id"],
        }
    ]
    assert logged(captured_logs, "outbound message sent") == [
        {
            "level": "INFO",
            "message": "outbound message sent",
            "message_id": message["messageId"],
            "cxone_id": sent["id"],
        }
    ]
    output = capsys.readouterr().out
    assert metric_values(output, "OutboundSent") == [([1.0], {})]
    assert metric_values(output, "OutboundSegments") == [([1.0], {})]
    assert (emf_units(output)["OutboundSent"], emf_units(output)["OutboundSegments"]) == ("Count", "Count")
    assert consumer_outcomes(outbound) == [
        {"id": message["messageId"], "status": "sent", "cxone_id": sent["id"], "send_after": None}
    ]
    assert "5551234" not in json.dumps(outbound.audit(), default=str)
    assert "5551234" not in json.dumps(outbound.idempotency_records(), default=str)


def test_recipients_without_consent_or_opted_out_are_refused_with_their_reason(outbound):
    status, answer = outbound.send(campaign(NEW_YORK, STRANGER, OPTED_OUT))

    assert status == 202
    assert answer["status"] == "queued"
    assert [m["to"] for m in answer["messages"]] == [NEW_YORK]
    assert answer["refused"] == [
        {"to": STRANGER, "reasons": ["no-consent"]},
        {"to": OPTED_OUT, "reasons": ["opted-out"]},
    ]
    assert [q["to"] for q in outbound.queued()] == [NEW_YORK]
    refusals = [r for r in outbound.audit(workflow="outbound-sms") if r["action"] == "refused"]
    assert sorted((r["reason"], r["phone_masked"]) for r in refusals) == [
        ("no-consent", "***0199"),
        ("opted-out", "***0142"),
    ]


def test_a_sends_status_records_queue_messages_audit_and_log_line_are_whole(
    outbound, captured_logs, capsys, local_time_not_utc
):
    hook = "https://hooks.example.org/status"

    _, answer = outbound.send(campaign(NEW_YORK, STRANGER, ALASKA, webhookUrl=hook), idempotency_key="k-1")

    queued_id, held_id = (m["messageId"] for m in answer["messages"])
    assert all(re.fullmatch(r"out-[0-9a-f]{32}", i) for i in (queued_id, held_id))
    fingerprint = outbound.hasher().fingerprint
    [queued] = outbound.queued()
    correlation_id = queued["correlation_id"]
    assert queued == {
        "id": queued_id,
        "to": NEW_YORK,
        "sender": OUR_NUMBER,
        "text": "Your order has shipped.",
        "campaign_id": "spring-sale",
        "segments": 1,
        "encoding": "GSM-7",
        "webhook_url": hook,
        "accepted_at": "2027-01-15T17:00:00Z",
        "correlation_id": correlation_id,
        "holds": 0,
    }
    send_after = answer["messages"][1]["sendAfter"]
    common = {"status_at": "2027-01-15T17:00:00.000Z", "campaign_id": "spring-sale", "segments": 1}
    assert stored_fields(outbound.status_of(queued_id)) == common | {
        "message_id": queued_id,
        "status": "queued",
        "status_rank": 1,
        "recipient_hash": fingerprint(NEW_YORK),
        "recipient_masked": "***1234",
        "webhook_url": hook,
    }
    assert stored_fields(outbound.status_of(held_id)) == common | {
        "message_id": held_id,
        "status": "held",
        "status_rank": 1,  # held and queued rank alike: both are before sent
        "recipient_hash": fingerprint(ALASKA),
        "recipient_masked": "***1234",
        "webhook_url": hook,
        "send_after": send_after,
    }
    details = {"campaign_id": "spring-sale", "segments": 1, "encoding": "GSM-7"}
    assert [stored_fields(r) for r in outbound.audit(workflow="outbound-sms")] == [
        {
            "workflow": "outbound-sms",
            "subject": queued_id,
            "action": "queued",
            "outcome": "accepted",
            "phone_hash": fingerprint(NEW_YORK),
            "phone_masked": "***1234",
            "details": details,
            "correlation_id": correlation_id,
        },
        {
            "workflow": "outbound-sms",
            "subject": "campaign-spring-sale",
            "action": "refused",
            "outcome": "refused",
            "reason": "no-consent",
            "phone_hash": fingerprint(STRANGER),
            "phone_masked": "***0199",
            "details": details | {"reasons": ["no-consent"]},
            "correlation_id": correlation_id,
        },
        {
            "workflow": "outbound-sms",
            "subject": held_id,
            "action": "held",
            "outcome": "accepted",
            "phone_hash": fingerprint(ALASKA),
            "phone_masked": "***1234",
            "details": details | {"send_after": send_after},
            "correlation_id": correlation_id,
        },
    ]
    assert logged(captured_logs, "outbound send accepted") == [
        {
            "level": "INFO",
            "message": "outbound send accepted",
            "campaign_id": "spring-sale",
            "recipients": 3,
            "refused": 1,
            "segments": 1,
        }
    ]
    output = capsys.readouterr().out
    assert metric_values(output, "OutboundRefused") == [([1.0], {"reason": "no-consent"})]
    assert (metric_values(output, "OutboundQueued"), metric_values(output, "OutboundHeld")) == (
        [([1.0], {})],
        [([1.0], {})],
    )


def test_sends_without_an_idempotency_key_get_message_ids_of_their_own(outbound):
    first = outbound.send(campaign(NEW_YORK))[1]["messages"]
    second = outbound.send(campaign(NEW_YORK))[1]["messages"]

    assert first[0]["messageId"] != second[0]["messageId"]
    assert len(outbound.queued()) == 2


def test_a_recipient_refused_for_two_reasons_is_audited_with_both(outbound):
    freephone = "+80012345678"  # no consent, and no time zone to keep quiet hours in

    _, answer = outbound.send(campaign(freephone))

    assert answer["refused"] == [{"to": freephone, "reasons": ["no-consent", "unknown-time-zone"]}]
    [refusal] = [r for r in outbound.audit(workflow="outbound-sms") if r["action"] == "refused"]
    assert (refusal["subject"], refusal["reason"]) == (
        "campaign-spring-sale",
        "no-consent, unknown-time-zone",
    )


def test_a_send_whose_audit_cannot_be_written_still_answers_and_says_so_in_the_log(
    outbound, monkeypatch, captured_logs
):
    def unavailable(self, events):
        raise WriteNotCompleted("audit table throttled")

    monkeypatch.setattr(AuditTrail, "record_many", unavailable)

    status, answer = outbound.send(campaign(NEW_YORK))

    # The message is queued: the consumer audits the send itself.
    assert (status, answer["status"]) == (202, "queued")
    assert len(outbound.queued()) == 1
    [failure] = logged(captured_logs, "could not audit an outbound send")
    assert (failure["level"], failure["exception_name"]) == ("ERROR", "WriteNotCompleted")


def test_a_request_refused_at_validation_is_counted_by_its_reason(outbound, capsys):
    outbound.send(campaign("12"))
    outbound.send_raw("{")

    emitted = metric_values(capsys.readouterr().out, "OutboundInvalid")
    assert sorted(dims["reason"] for _, dims in emitted) == ["invalid_fields", "malformed_json"]


def test_recipients_sent_with_one_idempotency_key_each_get_a_message_id_of_their_own(outbound):
    second_in_alaska = "+19075551235"
    outbound.consent(second_in_alaska, ConsentStatus.OPTED_IN, NOON_NEW_YORK - timedelta(days=2))

    _, answer = outbound.send(
        campaign(NEW_YORK, SAN_FRANCISCO, ALASKA, second_in_alaska), idempotency_key="k-ids"
    )

    statuses = [(m["to"], m["status"]) for m in answer["messages"]]
    assert statuses == [
        (NEW_YORK, "queued"),
        (SAN_FRANCISCO, "queued"),
        (ALASKA, "held"),
        (second_in_alaska, "held"),
    ]
    assert len({m["messageId"] for m in answer["messages"]}) == 4


def test_the_queued_message_carries_the_requests_correlation_id_as_an_attribute(outbound):
    outbound.send(campaign(NEW_YORK))

    [(body, attributes)] = peek_messages(outbound.sqs, outbound.stack.queues["OutboundSmsQueue"])
    assert attributes == {"correlation_id": json.loads(body)["correlation_id"]}


def test_the_idempotency_record_expires_its_in_progress_state_with_the_invocation(outbound):
    # Were the API to die mid-request, a retry may take over once the invocation's time is up
    # (10 s here), not only when the record's whole TTL has passed. Powertools reads the wall clock.
    before = time.time()
    outbound.send(campaign(NEW_YORK), idempotency_key="k-in-progress")
    after = time.time()

    [record] = [r for r in outbound.idempotency_records() if r["id"].startswith("sms-send#")]
    assert before * 1000 < int(record["in_progress_expiration"]) <= after * 1000 + 10_000


def test_national_numbers_are_read_in_the_configured_default_region(outbound):
    london, our_london_number = "+442079460018", "+442079460000"
    outbound.consent(london, ConsentStatus.OPTED_IN, NOON_NEW_YORK - timedelta(days=2))
    outbound.new_api_container(DEFAULT_PHONE_REGION="GB")

    status, answer = outbound.send(campaign("020 7946 0018") | {"from": "020 7946 0000"})

    assert (status, [(m["to"], m["status"]) for m in answer["messages"]]) == (202, [(london, "queued")])
    [queued] = outbound.queued()
    assert (queued["to"], queued["sender"]) == (london, our_london_number)


def test_a_local_stacks_api_takes_a_status_webhook_on_this_machine(outbound):
    # The harness's API runs as the local stack's does (STATUS_WEBHOOK_ALLOW_LOCAL=true).
    status, _ = outbound.send(campaign(NEW_YORK, webhookUrl="http://127.0.0.1:8081/status"))

    assert status == 202
    assert outbound.queued()[0]["webhook_url"] == "http://127.0.0.1:8081/status"


def test_two_api_keys_using_the_same_idempotency_key_send_two_messages(outbound):
    request = OutboundSmsRequest.model_validate(campaign(NEW_YORK))
    outbound.api.intake.register(LocalLambdaContext("outbound-sms-api", 10))

    _, first = outbound.api.intake.accept(request, idempotency_key="k-1", client="key-a")
    _, second = outbound.api.intake.accept(request, idempotency_key="k-1", client="key-b")
    _, again = outbound.api.intake.accept(request, idempotency_key="k-1", client="key-a")

    ids = [answer["messages"][0]["messageId"] for answer in (first, second, again)]
    assert ids[0] != ids[1] and ids[2] == ids[0]
    assert len(outbound.queued()) == 2


def test_a_send_with_every_recipient_refused_says_so_and_queues_nothing(outbound):
    assert outbound.send(campaign(STRANGER)) == (
        202,
        {
            "status": "refused",
            "encoding": "GSM-7",
            "segments": 1,
            "messages": [],
            "refused": [{"to": STRANGER, "reasons": ["no-consent"]}],
        },
    )
    assert outbound.depth() == 0
    assert outbound.state_items("message#") == []


def test_an_opt_out_that_arrives_while_the_message_waits_wins(outbound, clock, captured_logs, capsys):
    _, answer = outbound.send(campaign(NEW_YORK))
    message_id = answer["messages"][0]["messageId"]
    [queued] = outbound.queued()
    clock.set(NOON_NEW_YORK + timedelta(minutes=1))
    outbound.consent(NEW_YORK, ConsentStatus.OPTED_OUT)
    capsys.readouterr()

    result = outbound.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert outbound.sent() == []
    record = outbound.status_of(message_id)
    assert (record["status"], record["reason"], record["status_at"]) == (
        "refused",
        "opted-out",
        "2027-01-15T17:01:00.000Z",
    )
    assert "sent_at" not in record
    assert outbound.audit_actions(message_id)[-1] == ("refused", "refused")
    assert decisions(outbound, message_id, "refused") == [
        {
            "action": "refused",
            "outcome": "refused",
            "reason": "opted-out",
            "phone_masked": "***1234",
            "details": {"campaign_id": "spring-sale"},
            "correlation_id": queued["correlation_id"],
        }
    ]
    assert logged(captured_logs, "outbound message refused at send time") == [
        {
            "level": "INFO",
            "message": "outbound message refused at send time",
            "message_id": message_id,
            "reasons": ["opted-out"],
        }
    ]
    output = capsys.readouterr().out
    assert metric_values(output, "OutboundRefused") == [([1.0], {"reason": "opted-out"})]
    assert metric_values(output, "OutboundSent") == []
    assert consumer_outcomes(outbound) == [
        {"id": message_id, "status": "refused", "cxone_id": None, "send_after": None}
    ]


def test_a_queued_message_refused_for_two_reasons_names_both(outbound, captured_logs, capsys):
    """A number with no consent and no time zone (an international freephone number): both
    reasons, in the gate's order, and one count for each."""
    from cxone_relay.platform.data.dynamo import DynamoTable
    from cxone_relay.platform.data.messages import MessageRecord, MessageStatus, MessageStatusStore

    freephone = "+80012345678"
    MessageStatusStore(DynamoTable(outbound.dynamodb, outbound.stack.tables["StateTable"])).create(
        MessageRecord(
            "out-two-reasons", MessageStatus.QUEUED, "c-2", "hash", "***5678", "2027-01-15T16:59:00Z", 1
        )
    )
    outbound.enqueue(
        {
            "id": "out-two-reasons",
            "to": freephone,
            "sender": OUR_NUMBER,
            "text": "Hi",
            "campaign_id": "c-2",
            "segments": 1,
            "encoding": "GSM-7",
            "accepted_at": "2027-01-15T16:59:00Z",
            "correlation_id": "corr-2",
        }
    )
    capsys.readouterr()

    result = outbound.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert outbound.sent() == []
    record = outbound.status_of("out-two-reasons")
    assert (record["status"], record["reason"]) == ("refused", "no-consent, unknown-time-zone")
    assert decisions(outbound, "out-two-reasons") == [
        {
            "action": "refused",
            "outcome": "refused",
            "reason": "no-consent, unknown-time-zone",
            "phone_masked": "***5678",
            "details": {"campaign_id": "c-2"},
            "correlation_id": "corr-2",
        }
    ]
    [line] = logged(captured_logs, "outbound message refused at send time")
    assert line["reasons"] == ["no-consent", "unknown-time-zone"]
    assert metric_values(capsys.readouterr().out, "OutboundRefused") == [
        ([1.0], {"reason": "no-consent"}),
        ([1.0], {"reason": "unknown-time-zone"}),
    ]


# Quiet hours ---------------------------------------------------------------------------------


def test_a_message_outside_the_window_is_held_and_sent_when_the_window_opens(
    outbound, clock, captured_logs, capsys
):
    clock.set(datetime(2027, 1, 15, 12, 30, tzinfo=UTC))  # 07:30 in New York

    status, answer = outbound.send(campaign(NEW_YORK))

    [message] = answer["messages"]
    assert (status, message["status"], message["sendAfter"]) == (202, "held", "2027-01-15T13:00:00.000Z")
    assert outbound.depth() == 0
    assert outbound.status_of(message["messageId"])["status"] == "held"
    [held] = outbound.state_items("held#")
    assert (held["pk"], held["sk"]) == ("held#2027-01-15T13:00", message["messageId"])
    queued = json.loads(held["message"])

    clock.set(datetime(2027, 1, 15, 12, 59, 59, tzinfo=UTC))
    # The first sweep starts an hour back (the lookback) and goes up to this minute.
    assert outbound.sweep() == {
        "outcome": "completed",
        "released": 0,
        "minutes": 60,
        "checkpoint": "2027-01-15T12:59",
    }
    assert outbound.depth() == 0
    capsys.readouterr()

    clock.set(datetime(2027, 1, 15, 13, tzinfo=UTC))  # 08:00:00.000, the very instant it may go
    result = outbound.sweep()

    assert result == {"outcome": "completed", "released": 1, "minutes": 1, "checkpoint": "2027-01-15T13:00"}
    [checkpoint] = outbound.state_items("checkpoint#held-release")
    assert (checkpoint["checkpoint_position"], checkpoint["checkpoint_version"]) == ("2027-01-15T13:00", 61)
    assert logged(captured_logs, "held messages swept")[-1] == {
        "level": "INFO",
        "message": "held messages swept",
        **result,
    }
    assert metric_values(capsys.readouterr().out, "HeldReleased") == [([1.0], {})]
    assert outbound.state_items("held#") == []
    record = outbound.status_of(message["messageId"])
    assert (record["status"], record["status_at"]) == ("queued", "2027-01-15T13:00:00.000Z")
    [(body, attributes)] = peek_messages(outbound.sqs, outbound.stack.queues["OutboundSmsQueue"])
    assert json.loads(body) == queued
    assert attributes["correlation_id"] == queued["correlation_id"]
    assert decisions(outbound, message["messageId"], "released") == [
        {
            "action": "released",
            "outcome": "queued",
            "phone_masked": "***1234",
            "details": {"send_after": "2027-01-15T13:00:00.000Z", "campaign_id": "spring-sale"},
            "correlation_id": queued["correlation_id"],
        }
    ]
    outbound.deliver()
    assert [s["recipients"][0]["idOnExternalPlatform"] for s in outbound.sent()] == [NEW_YORK]
    assert outbound.audit_actions(message["messageId"]) == [
        ("held", "accepted"),
        ("released", "queued"),
        ("sent", "ok"),
    ]


def test_a_hold_lasts_days_and_missed_sweeps_are_made_up(outbound, clock, local_time_not_utc):
    clock.set(datetime(2027, 1, 15, 12, 30, tzinfo=UTC))
    outbound.sweep()  # the first run sets the checkpoint
    _, answer = outbound.send(campaign(NEW_YORK, SAN_FRANCISCO))
    # No sweep ran for hours (an outage): the next one catches up minute by minute.
    clock.set(datetime(2027, 1, 15, 16, 3, tzinfo=UTC))
    result = outbound.sweep()
    assert result == {"outcome": "completed", "released": 2, "minutes": 213, "checkpoint": "2027-01-15T16:03"}
    assert sorted(q["id"] for q in outbound.queued()) == sorted(m["messageId"] for m in answer["messages"])


class RemainingTime:
    """A Lambda context with a fixed time left."""

    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


@pytest.mark.parametrize(("millis", "outcome", "minutes"), [(7000, "completed", 60), (6999, "incomplete", 0)])
def test_a_sweep_starts_no_minute_without_the_time_one_needs(
    outbound, clock, monkeypatch, millis, outcome, minutes
):
    """Two seconds are kept in reserve and a minute needs five: 7 s left is just enough."""
    from cxone_relay.platform.data.messages import HeldMessages

    clock.set(datetime(2027, 1, 15, 12, 30, tzinfo=UTC))
    leases: list[dict] = []
    due_in = HeldMessages.due_in

    def watched(self, minute):
        leases.extend(outbound.state_items("lease#"))
        return due_in(self, minute)

    monkeypatch.setattr(HeldMessages, "due_in", watched)

    result = outbound.release.release.handle({}, RemainingTime(millis))

    checkpoint = "2027-01-15T12:30" if minutes else "2027-01-15T11:30"
    assert result == {"outcome": outcome, "released": 0, "minutes": minutes, "checkpoint": checkpoint}
    assert len(outbound.state_items("checkpoint#held-release")) == (1 if minutes else 0)
    assert outbound.state_items("lease#") == []  # released when done
    # Held while it sweeps, for the time it may take and half a minute more.
    assert {float(lease["lease_until"]) for lease in leases} == ({clock.now + 35} if minutes else set())


def test_a_sweep_already_running_is_not_joined(outbound, clock, capsys):
    from cxone_relay.platform.data.dynamo import DynamoTable
    from cxone_relay.platform.data.leases import Lease

    clock.set(datetime(2027, 1, 15, 13, tzinfo=UTC))
    table = DynamoTable(outbound.dynamodb, outbound.stack.tables["StateTable"])
    Lease(table, "held-release", 60, clock=clock, holder="another-run").acquire("held-release")
    capsys.readouterr()

    assert outbound.sweep() == {"outcome": "skipped"}
    assert outbound.state_items("checkpoint#") == []
    assert metric_values(capsys.readouterr().out, "HeldReleaseSkipped") == [([1.0], {})]
    [lease] = outbound.state_items("lease#")
    assert lease["holder"] == "another-run"


def test_a_minute_with_a_message_due_later_in_it_is_swept_again(outbound, clock):
    from cxone_relay.platform.data.dynamo import DynamoTable
    from cxone_relay.platform.data.messages import HeldMessages

    clock.set(datetime(2027, 1, 15, 12, 30, tzinfo=UTC))
    _, answer = outbound.send(campaign(NEW_YORK))
    on_the_minute = answer["messages"][0]["messageId"]
    later = {"id": "out-a-later", "to": MIAMI, "campaign_id": "c-3", "correlation_id": "corr-3"}
    held = HeldMessages(DynamoTable(outbound.dynamodb, outbound.stack.tables["StateTable"]))
    # Filed in message-id order, ahead of out-bare: the sweep must look past one not yet due.
    held.hold("out-a-later", datetime(2027, 1, 15, 13, 0, 30, tzinfo=UTC), later)
    # One with neither number nor correlation id: released all the same, audited without them.
    held.hold("out-bare", datetime(2027, 1, 15, 13, tzinfo=UTC), {"id": "out-bare", "campaign_id": "c-4"})
    outbound.sweep()  # up to 12:30

    clock.set(datetime(2027, 1, 15, 13, 0, 10, tzinfo=UTC))
    first = outbound.sweep()

    assert first == {"outcome": "completed", "released": 2, "minutes": 29, "checkpoint": "2027-01-15T12:59"}
    assert sorted(q["id"] for q in outbound.queued()) == sorted([on_the_minute, "out-bare"])
    assert decisions(outbound, "out-bare") == [
        {
            "action": "released",
            "outcome": "queued",
            "details": {"send_after": "2027-01-15T13:00:00.000Z", "campaign_id": "c-4"},
        }
    ]
    clock.set(datetime(2027, 1, 15, 13, 0, 30, tzinfo=UTC))
    second = outbound.sweep()
    assert second == {"outcome": "completed", "released": 1, "minutes": 1, "checkpoint": "2027-01-15T13:00"}
    assert sorted(q["id"] for q in outbound.queued()) == sorted([on_the_minute, "out-bare", "out-a-later"])
    assert decisions(outbound, "out-a-later") == [
        {
            "action": "released",
            "outcome": "queued",
            "phone_masked": "***1234",
            "details": {"send_after": "2027-01-15T13:00:30.000Z", "campaign_id": "c-3"},
            "correlation_id": "corr-3",
        }
    ]


def test_a_sweep_overtaken_by_another_stops_without_undoing_its_progress(outbound, clock, monkeypatch):
    from cxone_relay.platform.data.checkpoints import CheckpointStore
    from cxone_relay.platform.data.dynamo import DynamoTable
    from cxone_relay.platform.data.messages import HeldMessages

    clock.set(datetime(2027, 1, 15, 12, 30, tzinfo=UTC))
    outbound.sweep()
    store = CheckpointStore(DynamoTable(outbound.dynamodb, outbound.stack.tables["StateTable"]), clock)
    due_in = HeldMessages.due_in

    def overtaken(self, minute):
        if minute == "2027-01-15T12:32":  # another run (its lease lapsed) saves first
            version = store.load("held-release").version
            store.save("held-release", "2027-01-15T12:40", (), expected_version=version)
        return due_in(self, minute)

    monkeypatch.setattr(HeldMessages, "due_in", overtaken)
    clock.set(datetime(2027, 1, 15, 12, 45, tzinfo=UTC))

    result = outbound.sweep()

    assert result == {"outcome": "superseded", "released": 0, "minutes": 1, "checkpoint": "2027-01-15T12:31"}
    assert store.load("held-release").position == "2027-01-15T12:40"


def test_windows_in_several_zones_at_one_instant(outbound, clock):
    clock.set(datetime(2027, 1, 16, 1, 30, tzinfo=UTC))  # 20:30 New York and Miami, 17:30 SF
    _, answer = outbound.send(campaign(NEW_YORK, MIAMI, SAN_FRANCISCO))
    verdicts = {m["to"]: (m["status"], m.get("sendAfter")) for m in answer["messages"]}
    assert verdicts == {
        NEW_YORK: ("queued", None),
        MIAMI: ("held", "2027-01-16T13:00:00.000Z"),  # Florida's window closed at 20:00
        SAN_FRANCISCO: ("queued", None),
    }

    clock.set(datetime(2027, 1, 15, 17, 30, tzinfo=UTC))  # 08:30 Anchorage, 07:30 Adak
    _, answer = outbound.send(campaign(ALASKA))
    assert answer["messages"][0]["sendAfter"] == "2027-01-15T18:00:00.000Z"  # 08:00 in Adak too


def test_a_message_that_waited_past_its_window_is_held_again_not_sent_at_night(outbound, clock, capsys):
    clock.set(datetime(2027, 1, 16, 1, 59, tzinfo=UTC))  # 20:59 New York
    _, answer = outbound.send(campaign(NEW_YORK))
    message_id = answer["messages"][0]["messageId"]
    [queued] = outbound.queued()
    clock.set(datetime(2027, 1, 16, 2, 5, tzinfo=UTC))  # 21:05: the consumer was behind
    capsys.readouterr()

    outbound.deliver()

    assert outbound.sent() == []
    record = outbound.status_of(message_id)
    assert (record["status"], record["send_after"], record["status_at"]) == (
        "held",
        "2027-01-16T13:00:00.000Z",
        "2027-01-16T02:05:00.000Z",
    )
    [held] = outbound.state_items("held#2027-01-16T13:00")
    assert (held["sk"], held["send_after"], json.loads(held["message"])) == (
        message_id,
        "2027-01-16T13:00:00.000Z",
        queued | {"holds": 1},  # the consumer's copy: its release is new work, not a redelivery
    )
    assert decisions(outbound, message_id, "held")[-1] == {
        "action": "held",
        "outcome": "held",
        "phone_masked": "***1234",
        "details": {"campaign_id": "spring-sale", "send_after": "2027-01-16T13:00:00.000Z"},
        "correlation_id": queued["correlation_id"],
    }
    assert metric_values(capsys.readouterr().out, "OutboundHeld") == [([1.0], {})]
    assert consumer_outcomes(outbound) == [
        {"id": message_id, "status": "held", "cxone_id": None, "send_after": "2027-01-16T13:00:00.000Z"}
    ]


def test_a_message_the_consumer_held_is_sent_once_when_its_window_opens(outbound, clock):
    """Found by a test written against a mutant: keyed on its id alone, the released copy met
    the consumer's own "held" outcome for that id and was never sent."""
    clock.set(datetime(2027, 1, 16, 1, 59, tzinfo=UTC))  # 20:59 New York
    _, answer = outbound.send(campaign(NEW_YORK))
    message_id = answer["messages"][0]["messageId"]
    clock.set(datetime(2027, 1, 16, 2, 5, tzinfo=UTC))  # the consumer was behind: held
    outbound.deliver()
    assert outbound.sent() == []

    clock.set(datetime(2027, 1, 16, 13, 0, 30, tzinfo=UTC))  # 08:00:30 New York
    outbound.sweep()
    outbound.deliver()
    outbound.deliver()  # a redelivery of the released copy changes nothing

    sent_to = [[r["idOnExternalPlatform"] for r in request["recipients"]] for request in outbound.sent()]
    assert sent_to == [[NEW_YORK]]
    assert outbound.status_of(message_id)["status"] == "sent"
    assert [action for action, _ in outbound.audit_actions(message_id)][-2:] == ["released", "sent"]


def test_keyword_confirmations_are_not_held(stack, cxone_sim, ticketing_sim, monkeypatch):
    """A START at night is confirmed at once: keyword replies never pass the outbound gate."""
    from local.builders import inbound_sms
    from tests.integration.inbound_harness import InboundHarness

    inbound = InboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch)
    inbound.post(inbound_sms("kw-night", "START", sender=NEW_YORK))
    inbound.deliver()
    [reply] = inbound.replies()
    assert reply["recipients"][0]["idOnExternalPlatform"] == NEW_YORK


# Once per message ----------------------------------------------------------------------------


def test_a_redelivered_message_is_sent_once(outbound):
    outbound.send(campaign(NEW_YORK))
    [queued] = outbound.queued()
    outbound.deliver()
    outbound.enqueue(queued)
    outbound.enqueue(queued)

    outbound.deliver()
    outbound.deliver()

    assert len(outbound.sent()) == 1
    assert outbound.depth() == 0


def test_a_message_already_sent_is_not_sent_again_even_without_its_idempotency_record(outbound):
    outbound.send(campaign(NEW_YORK))
    [queued] = outbound.queued()
    outbound.deliver()
    for item in outbound.idempotency_records():
        outbound.dynamodb.delete_item(
            TableName=outbound.stack.tables["IdempotencyTable"], Key={"id": {"S": item["id"]}}
        )
    outbound.enqueue(queued)

    outbound.deliver()

    assert len(outbound.sent()) == 1
    assert outbound.audit_actions(queued["id"])[-1] == ("skipped", "ok")
    assert decisions(outbound, queued["id"], "skipped") == [
        {
            "action": "skipped",
            "outcome": "ok",
            "reason": "already sent",
            "phone_masked": "***1234",
            "details": {"campaign_id": "spring-sale"},
            "correlation_id": queued["correlation_id"],
        }
    ]
    assert consumer_outcomes(outbound) == [
        {"id": queued["id"], "status": "already", "cxone_id": None, "send_after": None}
    ]


def test_cxone_throttling_is_waited_out_and_the_message_sent_once(outbound):
    outbound.cxone.add_fault(status=429, retry_after=2, count=2, path_prefix="/dfo/3.0/channels")
    outbound.send(campaign(NEW_YORK))

    outbound.deliver()

    assert len(outbound.sent()) == 1
    assert outbound.sleeps[:2] == [2.0, 2.0]
    assert [r["status"] for r in outbound.send_requests()] == [429, 429, 201]


def test_a_message_cxone_refuses_is_dead_lettered_and_failed(outbound, clock, monkeypatch):
    _, answer = outbound.send(campaign(NEW_YORK))
    message_id = answer["messages"][0]["messageId"]
    [queued] = outbound.queued()
    outbound.cxone.add_fault(status=400, path_prefix="/dfo/3.0/channels")
    # CXone names every field it refuses; the audit keeps the first five.
    monkeypatch.setattr(
        outbound.cxone,
        "error_payload",
        lambda status, message, code, field: {
            "errors": [{"field": f"f{n}", "message": message, "errorCode": f"E{n}"} for n in range(7)]
        },
    )
    clock.set(NOON_NEW_YORK + timedelta(seconds=3))

    result = outbound.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    [(body, attributes)] = outbound.dead_letters()
    assert json.loads(body)["id"] == message_id
    assert attributes["failure_class"] == "PermanentUpstreamError"
    refusal = "cxone: POST /dfo/3.0/channels/sms-channel/outbound refused (HTTP 400)"
    record = outbound.status_of(message_id)
    assert (record["status"], record["reason"], record["status_at"]) == (
        "failed",
        refusal,
        "2027-01-15T17:00:03.000Z",
    )
    assert decisions(outbound, message_id, "cxone_failed") == [
        {
            "action": "cxone_failed",
            "outcome": "permanent_failure",
            "reason": refusal,
            "phone_masked": "***1234",
            "details": {
                "campaign_id": "spring-sale",
                "status": 400,
                "errors": [{"field": f"f{n}", "errorCode": f"E{n}"} for n in range(5)],
            },
            "correlation_id": queued["correlation_id"],
        }
    ]
    [dead_lettered] = decisions(outbound, message_id, "dead_lettered")
    assert (dead_lettered["phone_masked"], dead_lettered["correlation_id"]) == (
        "***1234",
        queued["correlation_id"],
    )


def test_a_message_cxone_cannot_take_now_is_retried_and_stays_queued(outbound):
    _, answer = outbound.send(campaign(NEW_YORK))
    message_id = answer["messages"][0]["messageId"]
    before = outbound.status_of(message_id)
    [queued] = outbound.queued()
    outbound.cxone.add_fault(status=503, path_prefix="/dfo/3.0/channels")

    result = outbound.deliver()

    assert (result.succeeded, result.failed) == (0, 1)
    assert outbound.dead_letters() == []
    assert outbound.status_of(message_id) == before
    assert decisions(outbound, message_id, "cxone_failed") == [
        {
            "action": "cxone_failed",
            "outcome": "retry",
            "reason": "cxone: POST /dfo/3.0/channels/sms-channel/outbound gave up after HTTP 503 (HTTP 503)",
            "phone_masked": "***1234",
            "details": {"campaign_id": "spring-sale", "status": 503, "errors": []},
            "correlation_id": queued["correlation_id"],
        }
    ]


# Idempotency-Key ------------------------------------------------------------------------------


def test_the_same_idempotency_key_replays_the_first_answer_byte_for_byte_and_sends_nothing(outbound):
    body = campaign(NEW_YORK, STRANGER)
    first = outbound.send_raw(body, idempotency_key="order-42")
    second = outbound.send_raw(json.loads(json.dumps(body)), idempotency_key="order-42")

    assert first == second
    assert first[0] == 202
    assert outbound.depth() == 1
    assert len(outbound.state_items("message#")) == 1
    other = outbound.send(body, idempotency_key="order-43")[1]
    assert other["messages"][0]["messageId"] != json.loads(first[1])["messages"][0]["messageId"]


def test_the_same_idempotency_key_with_another_body_is_409(outbound):
    outbound.send(campaign(NEW_YORK), idempotency_key="order-7")

    status, answer = outbound.send(campaign(NEW_YORK, text="Another text"), idempotency_key="order-7")

    assert (status, answer["error"]) == (409, "conflict")
    assert outbound.depth() == 1


# Dry run and segments --------------------------------------------------------------------------


def test_a_dry_run_answers_200_with_the_verdicts_and_stores_queues_and_sends_nothing(outbound, clock):
    clock.set(datetime(2027, 1, 15, 12, 30, tzinfo=UTC))
    status, answer = outbound.send(campaign(NEW_YORK, STRANGER, text="a" * 161, dryRun=True))

    assert (status, answer) == (
        200,
        {
            "dryRun": True,
            "encoding": "GSM-7",
            "segments": 2,
            "characters": 161,
            "messages": [{"to": NEW_YORK, "status": "held", "sendAfter": "2027-01-15T13:00:00.000Z"}],
            "refused": [{"to": STRANGER, "reasons": ["no-consent"]}],
        },
    )
    assert outbound.depth() == 0
    assert outbound.state_items("message#") == outbound.state_items("held#") == []
    assert outbound.audit(workflow="outbound-sms") == []


def test_smart_encoding_sends_the_gsm_text_it_counted(outbound):
    text = "\u201cThanks\u201d \u2014 see you soon\u2026"
    _, plain = outbound.send(campaign(NEW_YORK, text=text, dryRun=True))
    status, answer = outbound.send(campaign(NEW_YORK, text=text, smartEncoding=True))

    assert (plain["encoding"], answer["encoding"], status) == ("UCS-2", "GSM-7", 202)
    outbound.deliver()
    assert outbound.sent()[0]["messageContent"]["payload"]["text"] == '"Thanks" - see you soon...'


def test_a_two_part_message_is_sent_in_one_request_and_counted_as_two_segments(outbound, capsys):
    _, answer = outbound.send(campaign(NEW_YORK, text="a" * 161))
    message_id = answer["messages"][0]["messageId"]
    capsys.readouterr()

    outbound.deliver()

    [sent] = outbound.sent()
    assert sent["messageContent"]["payload"]["text"] == "a" * 161
    assert metric_values(capsys.readouterr().out, "OutboundSegments") == [([2.0], {})]
    [decision] = decisions(outbound, message_id, "sent")
    assert decision["details"] == {"campaign_id": "spring-sale", "cxone_id": sent["id"], "segments": 2}


# Bad input: 400/422 naming the field, nothing written -------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": [NEW_YORK, "+1 099 555 0000"]}, "to.1"),
        ({"to": [NEW_YORK, "(212) 555-1234"]}, "to.1"),  # the same number twice
        ({"to": []}, "to"),
        ({"to": [f"+1212555{n:04d}" for n in range(101)]}, "to"),
        ({"to": NEW_YORK}, "to"),
        ({"from": "12"}, "from"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "a" * 1531}, "text"),  # 11 segments, over the limit of 10
        ({"text": "a\u0000b"}, "text"),
        ({"campaignId": ""}, "campaignId"),
        ({"campaignId": None}, "campaignId"),
        ({"dryRun": "true"}, "dryRun"),
        ({"smartEncoding": 1}, "smartEncoding"),
        ({"segmentation": {"enabled": "no"}}, "segmentation.enabled"),
        ({"segmentation": {"enabled": False}, "text": "a" * 161}, "text"),
        ({"webhookUrl": "http://hooks.example.org/x"}, "webhookUrl"),
        ({"webhookUrl": "https://169.254.169.254/latest"}, "webhookUrl"),
        ({"webhookUrl": "https://user:pw@hooks.example.org/x"}, "webhookUrl"),
    ],
)
def test_invalid_fields_are_422_naming_them_and_nothing_is_written(outbound, change, field):
    outbound.strict_webhooks()
    body = {k: v for k, v in (campaign(NEW_YORK) | change).items() if v is not None}

    status, answer = outbound.send(body)

    assert (status, answer["error"]) == (422, "validation_failed")
    assert field in [problem["field"].replace("campaign_id", "campaignId") for problem in answer["fields"]]
    assert outbound.depth() == 0
    assert outbound.state_items("message#") == []
    [record] = outbound.audit(workflow="outbound-sms")
    assert (record["action"], record["reason"]) == ("rejected", "invalid_fields")


def test_every_invalid_field_is_named_at_once_with_what_is_wrong(outbound):
    body = campaign(
        "+1 099 555 0000", "12", NEW_YORK, "(212) 555-1234", text="a" * 1600, webhookUrl="ftp://x"
    )

    status, answer = outbound.send(body | {"from": "12"})

    assert status == 422
    assert answer["fields"] == [
        {"field": "to.0", "message": "not a valid number for its country"},
        {"field": "to.1", "message": "wrong length for its country"},
        {"field": "to.3", "message": "repeats to.2"},
        {"field": "from", "message": "wrong length for its country"},
        {"field": "webhookUrl", "message": "must be an https URL"},
        {"field": "text", "message": "needs 11 segments (GSM-7), at most 10"},
    ]


def test_a_text_of_exactly_the_segment_limit_is_accepted(outbound):
    status, answer = outbound.send(campaign(NEW_YORK, text="a" * 1530))

    assert (status, answer["segments"]) == (202, 10)


def test_malformed_json_is_400_and_an_oversized_key_422(outbound):
    assert outbound.send('{"to": [')[0] == 400
    assert outbound.send(campaign(NEW_YORK), idempotency_key="x" * 256)[0] == 422
    assert outbound.depth() == 0


def test_outbound_metrics_match_their_dashboard_queries(outbound, clock, capsys):
    outbound.send(campaign(NEW_YORK, STRANGER))
    outbound.send({"to": []})
    outbound.deliver()
    clock.set(datetime(2027, 1, 15, 12, 30, tzinfo=UTC))
    outbound.send(campaign(NEW_YORK))
    clock.set(datetime(2027, 1, 15, 13, 1, tzinfo=UTC))
    outbound.sweep()

    emitted = emf_metrics(capsys.readouterr().out)
    assert {name for name, _ in emitted} >= {
        "OutboundQueued",
        "OutboundHeld",
        "OutboundRefused",
        "OutboundInvalid",
        "OutboundSent",
        "OutboundSegments",
        "HeldReleased",
    }
    assert_matches_dashboard(emitted)
