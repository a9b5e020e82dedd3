"""Inbound SMS through its handlers: the API function and the SQS consumer, on moto built from
template.yaml and the CXone and ticketing simulators."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from cxone_relay.platform.cxone.client import CxoneClient
from cxone_relay.platform.data.audit import AuditTrail
from cxone_relay.platform.data.dynamo import WriteNotCompleted
from cxone_relay.platform.errors import PermanentUpstreamError
from cxone_relay.platform.queueing import QueuePublisher
from local.builders import emf_metrics, iso_utc
from local.builders import inbound_sms as sms
from tests.integration.inbound_harness import InboundHarness


@pytest.fixture
def inbound(stack, cxone_sim, ticketing_sim, monkeypatch) -> InboundHarness:
    return InboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch)


# The way in --------------------------------------------------------------------------------


def test_accepted_message_reaches_cxone_a_ticket_and_the_audit(inbound):
    status, body = inbound.post(sms("msg-1", "Hi, my invoice shows a wrong amount"))
    assert (status, body) == (202, {"status": "queued", "id": "msg-1"})
    assert inbound.depth("InboundSmsQueue") == 1

    result = inbound.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    [stored] = inbound.stored_in_cxone()
    assert stored["idOnExternalPlatform"] == "msg-1"
    assert stored["direction"] == "inbound"
    assert stored["thread"]["idOnExternalPlatform"] == "+14155552671"
    assert stored["authorEndUserIdentity"]["idOnExternalPlatform"] == "+14155552671"
    assert stored["routingQueueId"] == "billing-en"
    [ticket] = inbound.ticketing.tickets()
    assert ticket["external_id"] == "msg-1"
    assert (ticket["category"], ticket["language"], ticket["queue"], ticket["channel"]) == (
        "billing",
        "en",
        "billing-en",
        "sms",
    )
    assert ticket["keywords"] == ["invoice"]
    assert inbound.audit_actions("msg-1") == [
        ("queued", "accepted"),
        ("received", "ok"),
        ("routed", "ok"),
        ("cxone_stored", "ok"),
        ("ticket_upserted", "ok"),
    ]
    assert "4155552671" not in json.dumps(inbound.audit(), default=str)
    assert inbound.depth("InboundSmsQueue") == 0


def test_each_stage_audits_a_message_as_one_record_of_its_steps(inbound):
    inbound.post(sms("msg-routed", "Hi, my invoice shows a wrong amount"))
    inbound.post(sms("msg-help", "HELP", sender="+14155552672"))
    inbound.deliver()

    queued, consumed = inbound.audit_items("msg-routed")
    assert (queued["action"], queued["outcome"]) == ("queued", "accepted")
    # The consumer's record ends where the message got to, and lists how it got there.
    assert (consumed["action"], consumed["outcome"]) == ("ticket_upserted", "ok")
    assert [(s["action"], s["outcome"]) for s in consumed["steps"]] == [
        ("received", "ok"),
        ("routed", "ok"),
        ("cxone_stored", "ok"),
        ("ticket_upserted", "ok"),
    ]
    [stored] = inbound.stored_in_cxone()
    routed = consumed["steps"][1]["details"]
    assert routed.pop("language_confidence") > 0
    assert routed == {
        "category": "billing",
        "keywords": ["invoice"],
        "language": "en",
        "language_fallback": False,
        "queue": "billing-en",
    }
    assert consumed["steps"][2]["details"]["cxone_id"] == stored["id"]
    assert (consumed["phone_masked"], consumed["correlation_id"]) == ("***2671", queued["correlation_id"])
    assert [step["at"] for step in consumed["steps"]] == sorted(step["at"] for step in consumed["steps"])
    [_, help_record] = inbound.audit_items("msg-help")
    assert [s["action"] for s in help_record["steps"]] == ["received", "reply_sent"]
    assert help_record["steps"][1]["details"] == {"keyword": "help"}


def test_a_batch_whose_audit_was_not_written_comes_back_and_is_audited_as_replayed(inbound, monkeypatch):
    inbound.post(sms("msg-lost", "Hi, my invoice shows a wrong amount"))
    write = AuditTrail.record_stages

    def unavailable_once(self, records):
        monkeypatch.setattr(AuditTrail, "record_stages", write)
        raise WriteNotCompleted("audit table throttled")

    monkeypatch.setattr(AuditTrail, "record_stages", unavailable_once)

    first = inbound.deliver()
    # Processed and stored, but not audited: the invocation fails and the whole batch comes back.
    assert first.failed == 1 and "WriteNotCompleted" in str(first.error)
    assert [m["idOnExternalPlatform"] for m in inbound.stored_in_cxone()] == ["msg-lost"]
    second = inbound.deliver()

    assert (second.succeeded, second.failed) == (1, 0)
    assert len(inbound.cxone.requests(path_prefix="/dfo/3.0/channels/sms-channel/messages")) == 1
    assert inbound.audit_actions("msg-lost") == [
        ("queued", "accepted"),
        ("replayed", "ok"),
        ("ticket_upserted", "ok"),
    ]
    [replayed] = [r for r in inbound.audit("msg-lost") if r["action"] == "replayed"]
    result = replayed["details"]["result"]
    assert (result["action"], result["cxone_id"], result["routing"]["queue"]) == (
        "routed",
        inbound.stored_in_cxone()[0]["id"],
        "billing-en",
    )
    assert "wrong amount" not in json.dumps(replayed, default=str)  # decisions, never the text


def test_numbers_are_normalised_to_e164(inbound):
    status, _ = inbound.post(sms("msg-n", **{"from": "(415) 555-2671", "to": "415.555.0100"}))
    assert status == 202
    [queued] = inbound.queued_bodies("InboundSmsQueue")
    assert (queued["sender"], queued["recipient"]) == ("+14155552671", "+14155550100")


def test_opt_in_may_be_spelled_camel_case(inbound):
    payload = sms("msg-c")
    del payload["opt_in"]
    payload["optIn"] = True
    assert inbound.post(payload)[0] == 202


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_is_read_whatever_content_type_it_is_labelled(inbound, content_type):
    assert inbound.post(sms("msg-ct"), content_type=content_type) == (
        202,
        {"status": "queued", "id": "msg-ct"},
    )


def test_a_form_encoded_body_is_400_malformed_json(inbound):
    status, body = inbound.post("id=msg-f&body=hi", content_type="application/x-www-form-urlencoded")
    assert (status, body["error"]) == (400, "malformed_json")


def test_malformed_json_is_400_and_audited(inbound):
    status, body = inbound.post('{"id": "msg-1", "body": ')
    assert status == 400
    assert body["error"] == "malformed_json"
    [record] = inbound.audit()
    assert (record["action"], record["reason"]) == ("rejected", "malformed_json")
    assert inbound.depth("InboundSmsQueue") == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"from": "not-a-number"}, "from"),
        ({"from": "+1 099 555 2671"}, "from"),
        ({"to": "12"}, "to"),
        ({"body": ""}, "body"),
        ({"body": "x" * 1601}, "body"),
        ({"id": "has spaces"}, "id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"opt_in": "perhaps"}, "opt_in"),
        ({"opt_in": None}, "opt_in"),
        ({"timestamp": timedelta(minutes=6)}, "timestamp"),  # from now, when the test runs
        ({"timestamp": "0001-01-01T00:30:00+01:00"}, "timestamp"),
    ],
)
def test_invalid_field_is_422_naming_it_and_audited(inbound, change, field):
    if isinstance(change.get("timestamp"), timedelta):
        change = {"timestamp": iso_utc(datetime.now(UTC) + change["timestamp"])}
    payload = {key: value for key, value in (sms("msg-bad") | change).items() if value is not None}
    status, body = inbound.post(payload)

    assert status == 422
    assert body["error"] == "validation_failed"
    assert field in [problem["field"] for problem in body["fields"]]
    [record] = inbound.audit()
    assert record["action"] == "rejected" and record["reason"] == "invalid_fields"
    # The audit says which field was wrong, as the answer did.
    assert field in [problem.split(":")[0] for problem in record["details"]["fields"]]
    # An id that failed its own pattern never becomes a key: the API request id stands in.
    assert (record["subject"] == payload["id"]) is (field != "id")
    assert inbound.depth("InboundSmsQueue") == 0


def test_missing_consent_is_422_with_reason_and_audit(inbound):
    status, body = inbound.post(sms("msg-nc", "What time do you open?", opt_in=False))

    assert (status, body) == (422, {"error": "rejected", "reason": "no consent"})
    [record] = inbound.audit("msg-nc")
    assert (record["workflow"], record["action"]) == ("inbound-sms", "rejected")
    assert record["outcome"] == "rejected"
    assert (record["reason"], record["phone_masked"]) == ("no consent", "***2671")
    assert record["correlation_id"] == inbound.last_request_id
    assert inbound.depth("InboundSmsQueue") == 0


def test_a_refusal_is_logged_with_the_message_id_reason_and_rule(inbound, captured_logs):
    inbound.post(sms("msg-logged", "Free lottery for you"))

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    [line] = [line for line in lines if line.get("message") == "inbound message rejected"]
    assert (line["message_id"], line["reason"], line["rule"], line["level"]) == (
        "msg-logged",
        "spam",
        "free lottery",
        "INFO",
    )


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("You are our FREE LOTTERY winner", "free lottery"),
        ("Winner Notification: reply now", "winner notification"),
        ("ACT NOW to keep your account", "act now"),
        ("Click here to claim: http://x.example", "click here to claim"),
        ("Frée lottéry inside", "free lottery"),
    ],
)
def test_spam_is_422_with_the_rule_and_audited(inbound, text, rule):
    status, body = inbound.post(sms("msg-spam", text))

    assert (status, body) == (422, {"error": "rejected", "reason": "spam", "rule": rule})
    [record] = inbound.audit("msg-spam")
    assert (record["reason"], record["details"]["rule"]) == ("spam", rule)
    assert inbound.depth("InboundSmsQueue") == 0


@pytest.mark.parametrize(("text", "keyword"), [("STOP", "opt_out"), ("help", "help"), ("Start", "opt_in")])
def test_keywords_are_accepted_before_consent_and_spam_rules(inbound, text, keyword):
    status, body = inbound.post(sms("msg-k", text, opt_in=False))
    assert (status, body) == (202, {"status": "queued", "id": "msg-k", "keyword": keyword})
    # "STOP act now" would be spam; the keyword wins.
    assert inbound.post(sms("msg-k2", "STOP act now", opt_in=False))[0] == 202


def test_the_queued_message_carries_the_api_request_id_and_its_record_the_masked_number(inbound):
    assert inbound.post(sms("msg-shape", "Where is my invoice?"))[0] == 202

    [(raw, attributes)] = inbound.queued_messages("InboundSmsQueue")
    body = json.loads(raw)
    assert attributes == {"correlation_id": inbound.last_request_id}
    assert (body["id"], body["sender"], body["correlation_id"]) == (
        "msg-shape",
        "+14155552671",
        inbound.last_request_id,
    )
    # JSON as the consumer's model reads it: ISO 8601 times with their offset.
    for name in ("timestamp", "received_at"):
        assert "T" in body[name] and datetime.fromisoformat(body[name]).utcoffset() == timedelta(0)
    [queued] = inbound.audit("msg-shape")
    assert (queued["action"], queued["phone_masked"]) == ("queued", "***2671")
    assert queued["phone_hash"] and "4155552671" not in queued["phone_hash"]


def test_the_received_time_is_the_instant_of_receipt_on_a_machine_in_another_zone(
    inbound, local_time_not_utc
):
    before = time.time()
    inbound.post(sms("msg-zone"))
    after = time.time()

    [(raw, _)] = inbound.queued_messages("InboundSmsQueue")
    received = datetime.fromisoformat(json.loads(raw)["received_at"]).timestamp()
    assert before - 0.001 <= received <= after + 0.001


def test_a_repeated_id_is_queued_once_and_answered_alike(inbound):
    first = inbound.post(sms("msg-dup"))
    second = inbound.post(sms("msg-dup"))

    assert first == second == (202, {"status": "queued", "id": "msg-dup"})
    assert inbound.depth("InboundSmsQueue") == 1
    assert [r["action"] for r in inbound.audit("msg-dup")] == ["queued"]


@pytest.mark.parametrize(
    "change",
    [{"body": "a different text"}, {"from": "+14155552672"}, {"to": "+14155550101"}],
    ids=["text", "sender", "recipient"],
)
def test_a_reused_id_with_a_different_message_is_409(inbound, change):
    inbound.post(sms("msg-dup", "first text about my invoice"))
    status, body = inbound.post(sms("msg-dup", "first text about my invoice") | change)
    assert (status, body) == (
        409,
        {"error": "conflict", "message": "this id was already used for a different message"},
    )
    assert inbound.depth("InboundSmsQueue") == 1
    # The record tells the two apart by a keyed hash: it holds neither text nor number.
    [queued] = inbound.audit("msg-dup")
    assert "invoice" not in json.dumps(queued, default=str)
    assert "4155552671" not in json.dumps(queued, default=str)


def test_a_retry_racing_the_first_attempt_is_answered_alike_and_has_one_effect(inbound, monkeypatch):
    # The second attempt arrives while the first is queueing, before its "queued" record exists:
    # both queue the message (SQS delivers at least once anyway), and the consumer's idempotency
    # turns the two queue messages into one CXone store and one ticket.
    publish, entered, release = QueuePublisher.publish, threading.Event(), threading.Event()
    calls: list[int] = []

    def first_publish_waits(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            release.wait(timeout=10)
        return publish(*args, **kwargs)

    monkeypatch.setattr(QueuePublisher, "publish", first_publish_waits)
    message = sms("msg-race")
    first: list[tuple[int, dict]] = []
    worker = threading.Thread(target=lambda: first.append(inbound.post(message)))
    worker.start()
    assert entered.wait(timeout=10)

    second = inbound.post(message)
    release.set()
    worker.join(timeout=10)

    assert first == [second] == [(202, {"status": "queued", "id": "msg-race"})]
    assert inbound.depth("InboundSmsQueue") == 2
    results = inbound.drain()
    assert sum(r.succeeded for r in results) == 2 and sum(r.failed for r in results) == 0
    assert [m["idOnExternalPlatform"] for m in inbound.stored_in_cxone()] == ["msg-race"]
    assert len(inbound.cxone.requests(path_prefix="/dfo/3.0/channels/sms-channel/messages")) == 1
    assert [t["external_id"] for t in inbound.ticketing.tickets()] == ["msg-race"]
    actions = [action for action, _ in inbound.audit_actions("msg-race")]
    assert (actions.count("queued"), actions.count("cxone_stored")) == (2, 1)


def test_a_repeated_id_is_answered_from_its_record_after_the_message_is_processed(inbound):
    assert inbound.post(sms("msg-later", "STOP", opt_in=False)) == (
        202,
        {"status": "queued", "id": "msg-later", "keyword": "opt_out"},
    )
    inbound.drain()

    assert inbound.post(sms("msg-later", "STOP", opt_in=False)) == (
        202,
        {"status": "queued", "id": "msg-later", "keyword": "opt_out"},
    )
    assert inbound.depth("InboundSmsQueue") == 0
    assert len(inbound.replies()) == 1


def test_an_id_refused_before_is_accepted_when_it_comes_back_with_consent(inbound):
    assert inbound.post(sms("msg-again", "What time do you open?", opt_in=False))[0] == 422

    assert inbound.post(sms("msg-again", "What time do you open?")) == (
        202,
        {"status": "queued", "id": "msg-again"},
    )
    assert inbound.depth("InboundSmsQueue") == 1
    assert [action for action, _ in inbound.audit_actions("msg-again")] == ["rejected", "queued"]


def test_a_redelivered_message_is_processed_once(inbound):
    inbound.post(sms("msg-once"))
    [queued] = inbound.queued_bodies("InboundSmsQueue")
    inbound.redeliver_copy(queued)  # SQS at-least-once: the same message twice

    results = inbound.drain()

    assert sum(r.succeeded for r in results) == 2
    assert len(inbound.stored_in_cxone()) == 1
    assert len(inbound.cxone.requests(path_prefix="/dfo/3.0/channels/sms-channel/messages")) == 1
    assert len(inbound.ticketing.tickets()) == 1
    assert [a for a, _ in inbound.audit_actions("msg-once")].count("cxone_stored") == 1


def test_the_same_message_twice_in_one_batch_makes_one_ticket_item(inbound):
    inbound.post(sms("msg-twice"))
    [queued] = inbound.queued_bodies("InboundSmsQueue")
    inbound.redeliver_copy(queued)

    result = inbound.deliver()

    assert (result.received, result.succeeded) == (2, 2)
    [call] = inbound.ticket_calls()
    assert [ticket["id"] for ticket in call["body"]] == ["sms-msg-twice"]


def test_a_ticketing_failure_fails_every_copy_of_a_duplicated_message(inbound):
    inbound.post(sms("msg-twice"))
    [queued] = inbound.queued_bodies("InboundSmsQueue")
    inbound.redeliver_copy(queued)
    inbound.ticketing.add_fault(status=503, retry_after=0, path_prefix="/api/v1/tickets")

    result = inbound.deliver()

    assert (result.received, result.failed) == (2, 2)


# Keywords ----------------------------------------------------------------------------------


def test_stop_updates_consent_queues_the_opt_out_and_replies_once(inbound):
    inbound.post(sms("msg-stop", "STOP please", opt_in=False))
    [queued] = inbound.queued_bodies("InboundSmsQueue")
    inbound.redeliver_copy(queued)
    inbound.drain()

    [(raw_opt_out, attributes)] = inbound.queued_messages("OptOutQueue")
    opt_out = json.loads(raw_opt_out)
    assert (opt_out["phone"], opt_out["source"], opt_out["reference"]) == ("+14155552671", "sms", "msg-stop")
    assert datetime.fromisoformat(opt_out["requested_at"]) == datetime.fromisoformat(queued["timestamp"])
    assert attributes["correlation_id"] == queued["correlation_id"] == inbound.last_request_id
    [reply] = inbound.replies()
    assert reply["recipients"][0]["idOnExternalPlatform"] == "+14155552671"
    assert "unsubscribed" in reply["messageContent"]["payload"]["text"]
    reply_requests = inbound.cxone.requests(path_prefix="/dfo/3.0/channels/sms-channel/outbound")
    assert {r["headers"]["idempotency-key"] for r in reply_requests} == {"msg-stop:reply:opt_out"}
    assert inbound.consent_ledger().status("+14155552671") == "opted_out"
    assert inbound.stored_in_cxone() == [] and inbound.ticketing.tickets() == []
    actions = inbound.audit_actions("msg-stop")
    assert ("consent_updated", "opted_out") in actions and ("reply_sent", "ok") in actions
    assert ("opt_out_queued", "ok") in actions
    [entry] = inbound.consent_ledger().history("+14155552671")
    assert (entry.status, entry.source, entry.reference) == ("opted_out", "sms", "msg-stop")


def test_start_opts_back_in_and_a_late_stop_does_not_undo_it(inbound):
    now = datetime.now(UTC)
    inbound.post(sms("msg-start", "START", timestamp=iso_utc(now - timedelta(minutes=5))))
    inbound.post(sms("msg-old-stop", "STOP", timestamp=iso_utc(now - timedelta(minutes=10))))
    results = inbound.drain()

    # Both complete: the superseded STOP is an outcome, not a failure.
    assert sum(r.succeeded for r in results) == 2 and sum(r.failed for r in results) == 0
    assert inbound.depth("InboundSmsQueue") == inbound.depth("InboundSmsDLQ") == 0

    ledger = inbound.consent_ledger()
    assert ledger.status("+14155552671") == "opted_in"
    assert [entry.status for entry in ledger.history("+14155552671")] == ["opted_out", "opted_in"]
    # The superseded STOP is recorded, but neither confirmed nor sent to DNC sync.
    [reply] = inbound.replies()
    assert "subscribed again" in reply["messageContent"]["payload"]["text"]
    assert inbound.depth("OptOutQueue") == 0
    assert ("consent_superseded", "opted_out") in inbound.audit_actions("msg-old-stop")


def test_help_sends_the_configured_help_text(inbound):
    inbound.post(sms("msg-help", "HELP"))
    inbound.drain()
    [reply] = inbound.replies()
    assert reply["messageContent"]["payload"]["text"] == inbound.stack.template.parameter("HelpText")
    assert inbound.depth("OptOutQueue") == 0


# Routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category", "language", "queue"),
    [
        ("Hi, there is a charge on my card I do not recognise", "billing", "en", "billing-en"),
        ("Hello, the app shows an error every time I try to sign in", "technical", "en", "technical-en"),
        ("Hello, what are your opening hours on Sunday?", "general", "en", "general-en"),
        ("Hola, necesito ayuda con la factura del mes pasado", "general", "es", "spanish"),
        ("Bonjour, je n'arrive pas à me connecter à mon compte", "general", "fr", "french"),
        ("Olá, preciso de ajuda com a minha conta, obrigado", "general", "pt", "portuguese"),
        ("Hallo, ich habe eine Frage zu meinem Vertrag", "general", "de", "german"),
        ("Hola, me sale un error al cambiar la contraseña desde ayer", "technical", "es", "spanish"),
    ],
)
def test_routing_by_keyword_and_language(inbound, text, category, language, queue):
    inbound.post(sms("msg-route", text))
    inbound.drain()

    [stored] = inbound.stored_in_cxone()
    assert stored["routingQueueId"] == queue
    [ticket] = inbound.ticketing.tickets()
    assert (ticket["category"], ticket["language"], ticket["queue"]) == (category, language, queue)


# Batches and failures ----------------------------------------------------------------------


def test_25_messages_in_one_batch_make_one_ticketing_call_of_25(inbound):
    for n in range(25):
        assert inbound.post(sms(f"msg-{n:02d}", f"Question {n} about my invoice"))[0] == 202

    result = inbound.deliver()

    assert result.received == 25 and result.succeeded == 25
    [call] = inbound.ticket_calls()
    assert len(call["body"]) == 25
    assert len(inbound.stored_in_cxone()) == 25


def test_a_cxone_429_fails_only_the_affected_records_and_a_later_delivery_succeeds(inbound):
    for n in range(5):
        inbound.post(sms(f"msg-{n}", f"Question {n} about my invoice"))
    # Only msg-3's store is throttled, on every attempt of this delivery (Retry-After 0: no waiting).
    inbound.cxone.add_fault(
        status=429, retry_after=0, body_contains='"msg-3"', path_prefix="/dfo/3.0/channels"
    )

    first = inbound.deliver()

    assert (first.succeeded, first.failed) == (4, 1)
    assert sorted(m["idOnExternalPlatform"] for m in inbound.stored_in_cxone()) == [
        "msg-0",
        "msg-1",
        "msg-2",
        "msg-4",
    ]
    assert [len(call["body"]) for call in inbound.ticket_calls()] == [4]
    [failure] = [r for r in inbound.audit("msg-3") if r["action"] == "cxone_failed"]
    assert (failure["outcome"], failure["reason"], failure["details"]) == (
        "retry",
        "cxone: POST /dfo/3.0/channels/sms-channel/messages gave up after HTTP 429 (HTTP 429)",
        {"status": 429, "errors": []},
    )

    inbound.cxone.clear_faults()
    second = inbound.deliver()

    assert (second.received, second.succeeded, second.failed) == (1, 1, 0)
    assert len(inbound.stored_in_cxone()) == 5
    assert len(inbound.ticketing.tickets()) == 5
    assert inbound.depth("InboundSmsQueue") == 0


def test_a_cxone_400_is_tried_once_then_dead_lettered_with_its_reason(inbound, captured_logs):
    inbound.post(sms("msg-bad", "Please look at my invoice"))
    inbound.post(sms("msg-good", "Please look at my payment"))
    inbound.cxone.add_fault(status=400, body_contains='"msg-bad"', path_prefix="/dfo/3.0/channels")

    result = inbound.deliver()

    # Reported done (no redelivery), because it is already in the DLQ with why.
    assert (result.received, result.succeeded, result.failed) == (2, 2, 0)
    assert inbound.depth("InboundSmsQueue") == 0
    [(body, attributes)] = inbound.dead_letters()
    assert json.loads(body)["id"] == "msg-bad"
    assert attributes["failure_class"] == "PermanentUpstreamError"
    assert "HTTP 400" in attributes["failure_reason"]
    assert attributes["workflow"] == "inbound-sms" and attributes["source_message_id"]
    store_attempts = inbound.cxone.requests(path_prefix="/dfo/3.0/channels/sms-channel/messages")
    assert len([r for r in store_attempts if "msg-bad" in json.dumps(r["body"])]) == 1
    actions = inbound.audit_actions("msg-bad")
    assert ("cxone_failed", "permanent_failure") in actions and (
        "dead_lettered",
        "permanent_failure",
    ) in actions
    [failure] = [r for r in inbound.audit("msg-bad") if r["action"] == "cxone_failed"]
    # CXone's field and error code, never its free-text message (which may echo the number).
    assert (failure["outcome"], failure["reason"], failure["details"]) == (
        "permanent_failure",
        "cxone: POST /dfo/3.0/channels/sms-channel/messages refused (HTTP 400)",
        {"status": 400, "errors": [{"field": None, "errorCode": "BadRequest"}]},
    )
    assert [m["idOnExternalPlatform"] for m in inbound.stored_in_cxone()] == ["msg-good"]
    logged = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    [warning] = [entry for entry in logged if entry["message"] == "inbound message not completed"]
    assert (warning["message_id"], warning["retryable"], warning["status"]) == ("msg-bad", False, 400)


def test_a_refusals_errors_are_audited_as_field_and_code_only_and_at_most_five(inbound, monkeypatch):
    details = [
        {"field": f"field{n}", "errorCode": f"Code{n}", "message": "+14155552671 is not allowed"}
        for n in range(7)
    ]

    def refused(*args, **kwargs):
        raise PermanentUpstreamError("cxone", "refused", status=422, details=details)

    monkeypatch.setattr(CxoneClient, "store_inbound_message", refused)
    inbound.post(sms("msg-refused", "Please look at my invoice"))

    inbound.deliver()

    [failure] = [r for r in inbound.audit("msg-refused") if r["action"] == "cxone_failed"]
    assert failure["details"] == {
        "status": 422,
        "errors": [{"field": f"field{n}", "errorCode": f"Code{n}"} for n in range(5)],
    }


@pytest.mark.parametrize(
    "raw",
    ["not json at all", json.dumps({"no": "id"}), json.dumps({"id": "msg-shape", "sender": "+14155552671"})],
    ids=["not-json", "no-id", "wrong-shape"],
)
def test_a_malformed_queue_record_is_audited_and_dead_lettered_alone(inbound, raw):
    inbound.post(sms("msg-fine"))
    inbound.sqs.send_message(QueueUrl=inbound.queue_url, MessageBody=raw)

    result = inbound.deliver()

    assert (result.succeeded, result.failed) == (2, 0)
    [(body, attributes)] = inbound.dead_letters()
    assert body == raw  # the exact bytes, for whoever investigates
    assert attributes["failure_class"] in {"ValidationError", "JSONDecodeError"}
    [record] = [r for r in inbound.audit() if r["action"] == "dead_lettered"]
    assert (record["workflow"], record["outcome"]) == ("inbound-sms", "permanent_failure")
    # Its own id when the body has a usable one, else the SQS message id; never its content.
    assert record["subject"] == (
        "msg-shape" if "msg-shape" in raw else f"sqs-{attributes['source_message_id']}"
    )
    assert record["details"] == {
        "sqs_message_id": attributes["source_message_id"],
        "error_class": attributes["failure_class"],
    }
    assert record["reason"] == attributes["failure_reason"]
    assert "4155552671" not in json.dumps(record, default=str)
    assert [m["idOnExternalPlatform"] for m in inbound.stored_in_cxone()] == ["msg-fine"]


def test_a_ticketing_outage_fails_only_ticketed_records_and_cxone_is_not_called_again(inbound):
    inbound.post(sms("msg-a", "invoice question"))
    inbound.post(sms("msg-b", "HELP"))
    inbound.ticketing.add_fault(status=503, retry_after=0, path_prefix="/api/v1/tickets")

    first = inbound.deliver()

    assert (first.succeeded, first.failed) == (1, 1)  # the HELP has no ticket and completes
    assert ("ticketing_failed", "retry") in inbound.audit_actions("msg-a")
    inbound.ticketing.clear_faults()
    inbound.deliver()

    assert [t["external_id"] for t in inbound.ticketing.tickets()] == ["msg-a"]
    assert len(inbound.cxone.requests(path_prefix="/dfo/3.0/channels/sms-channel/messages")) == 1


# Metrics -----------------------------------------------------------------------------------


def test_the_workflow_emits_its_metrics(inbound, capsys):
    inbound.post(sms("msg-m1", "There is a wrong charge on my invoice"))
    inbound.post(sms("msg-m2", "Hola, necesito ayuda con la factura del mes pasado"))
    inbound.post(sms("msg-m3", "STOP"))
    inbound.post(sms("msg-m4", "Free lottery winner"))
    inbound.post(sms("msg-m5", "hello", opt_in=False))
    inbound.drain()

    # Both handlers share this test process, so the `service` dimension (per function in Lambda,
    # from POWERTOOLS_SERVICE_NAME) and the stack (test_dashboard.py checks both) are left out.
    metrics = [
        (name, {k: v for k, v in dims.items() if k not in {"service", "stack"}})
        for name, dims in emf_metrics(capsys.readouterr().out)
    ]
    names = {name for name, _ in metrics}
    assert {"MessagesIngested", "CxoneLatency", "TicketsUpserted"} <= names
    assert ("MessagesRejected", {"reason": "spam"}) in metrics
    assert ("MessagesRejected", {"reason": "no consent"}) in metrics
    routed = [dims for name, dims in metrics if name == "MessagesRouted"]
    assert {(d["category"], d["language"]) for d in routed} == {("billing", "en"), ("general", "es")}
    assert ("KeywordActions", {"action": "opt_out"}) in metrics
