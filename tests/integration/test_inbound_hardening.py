"""What a hostile or careless client, a broken deploy and an at-least-once queue do to the inbound
workflow: each case measured once on the local stack, pinned here through the handlers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests

from cxone_relay.platform.data.audit import AuditTrail
from local.builders import emf_metrics, iso_utc
from local.builders import inbound_sms as sms
from tests.integration.inbound_harness import InboundHarness


@pytest.fixture
def inbound(stack, cxone_sim, ticketing_sim, monkeypatch) -> InboundHarness:
    return InboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch)


def refused(inbound: InboundHarness, body, status: int, error: str) -> dict:
    """Post, expect the refusal, and check nothing was queued."""
    answer_status, answer = inbound.post(body)
    assert (answer_status, answer["error"]) == (status, error), answer
    assert inbound.depth("InboundSmsQueue") == 0
    return answer


# Bodies that are not one JSON object -------------------------------------------------------


def test_a_json_array_is_400_and_queues_neither_message(inbound):
    answer = refused(inbound, json.dumps([sms("msg-a"), sms("msg-b")]), 400, "not_an_object")
    assert "one JSON object" in answer["message"]
    [record] = inbound.audit()
    assert (record["action"], record["reason"]) == ("rejected", "not_an_object")


@pytest.mark.parametrize("depth", [40, 1200, 20_000])
def test_deep_nesting_is_400_not_a_retry_later(inbound, depth):
    refused(inbound, '{"id": "msg-deep", "x": ' + "[" * depth + "]" * depth + "}", 400, "malformed_json")


def test_a_latin1_body_is_400_not_stored_with_replacement_characters(inbound):
    body = json.dumps(sms("msg-latin1", "Bonjour, le café est froid"), ensure_ascii=False).encode("latin-1")
    assert b"caf\xe9" in body
    refused(inbound, body, 400, "not_utf8")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_400(inbound, text):
    refused(inbound, '{"id": "msg-nan", "opt_in": ' + text + "}", 400, "malformed_json")


def test_a_body_over_64_kb_is_413(inbound):
    refused(
        inbound, json.dumps(sms("msg-big", "x" * 1000) | {"padding": "p" * 70_000}), 413, "payload_too_large"
    )


# Text that cannot be stored -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "\ud800x"),
        ("body", "hello\u0000there"),
        ("body", "bell\u0007"),
        ("body", "lone \udfff low surrogate"),
        ("from", "+14155552671\u001b"),
    ],
)
def test_lone_surrogates_nul_and_control_characters_are_422_naming_the_field(inbound, field, value):
    answer = refused(inbound, json.dumps(sms("msg-ctl") | {field: value}), 422, "validation_failed")
    assert field in [problem["field"] for problem in answer["fields"]]
    [record] = inbound.audit()  # audited under the API request id when the id itself was bad
    assert record["reason"] == "invalid_fields"


def test_tabs_and_line_breaks_are_ordinary_text(inbound):
    assert inbound.post(sms("msg-lines", "First line\r\nsecond\tline"))[0] == 202


def test_an_audit_write_that_fails_never_turns_a_refusal_into_a_5xx(inbound, monkeypatch, captured_logs):
    def broken(self, event):
        raise RuntimeError("DynamoDB is having a bad day")

    monkeypatch.setattr(AuditTrail, "record", broken)

    assert inbound.post(sms("msg-spam", "Free lottery!"))[0] == 422
    assert inbound.post(sms("msg-bad", **{"from": "+1 099 555 2671"}))[0] == 422
    assert inbound.post("[]")[0] == 400
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    failures = [line for line in lines if line["message"].startswith("could not")]
    assert [(line["message"], line["level"], line["subject"], line["reason"]) for line in failures] == [
        ("could not audit a refused message", "ERROR", "msg-spam", "spam"),
        ("could not audit a refused message", "ERROR", "msg-bad", "invalid_fields"),
        ("could not audit a refused message", "ERROR", inbound.last_request_id, "not_an_object"),
    ]


# Strict types -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "on", "1", "true", 1, 1.0, 0])
def test_opt_in_is_json_true_or_false_only(inbound, value):
    answer = refused(inbound, sms("msg-loose", opt_in=value), 422, "validation_failed")
    assert [problem["field"] for problem in answer["fields"]] == ["opt_in"]


@pytest.mark.parametrize(
    ("field", "value"), [("id", 12345), ("body", 7), ("from", 14155552671), ("to", None)]
)
def test_strings_must_be_strings(inbound, field, value):
    answer = refused(inbound, sms("msg-types") | {field: value}, 422, "validation_failed")
    assert field in [problem["field"] for problem in answer["fields"]]


# Timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [0, -1, "0001-01-01T00:00:00Z", -timedelta(days=7, minutes=1)],
    ids=["epoch-0", "negative", "year-1", "just-over-7-days"],
)
def test_a_timestamp_older_than_the_maximum_age_is_422(inbound, timestamp):
    if isinstance(timestamp, timedelta):  # from now, when the test runs
        timestamp = iso_utc(datetime.now(UTC) + timestamp)
    answer = refused(inbound, sms("msg-old", timestamp=timestamp), 422, "validation_failed")
    assert [problem["field"] for problem in answer["fields"]] == ["timestamp"]


def test_a_recent_timestamp_as_epoch_seconds_is_accepted(inbound):
    recent = int((datetime.now(UTC) - timedelta(days=6)).timestamp())
    assert inbound.post(sms("msg-epoch", timestamp=recent))[0] == 202


# STOP, START and HELP need no consent flag ---------------------------------------------------


@pytest.mark.parametrize("opt_in", [None, False])
@pytest.mark.parametrize(("text", "keyword"), [("STOP", "opt_out"), ("start", "opt_in"), ("HELP", "help")])
def test_keywords_without_consent_are_accepted(inbound, text, keyword, opt_in):
    payload = sms(f"msg-{keyword}", text)
    if opt_in is None:
        del payload["opt_in"]
    else:
        payload["opt_in"] = opt_in
    assert inbound.post(payload) == (202, {"status": "queued", "id": f"msg-{keyword}", "keyword": keyword})


def test_a_stop_without_consent_is_honoured_end_to_end(inbound):
    payload = sms("msg-revoke", "Stop texting me")
    del payload["opt_in"]
    inbound.post(payload)
    inbound.drain()

    assert inbound.consent_ledger().status("+14155552671") == "opted_out"
    [opt_out] = inbound.queued_bodies("OptOutQueue")
    assert opt_out["reference"] == "msg-revoke"


def test_an_ordinary_message_still_needs_opt_in(inbound):
    payload = sms("msg-plain", "When do you open?")
    del payload["opt_in"]
    answer = refused(inbound, payload, 422, "validation_failed")
    assert [problem["field"] for problem in answer["fields"]] == ["opt_in"]


# No silent failures ----------------------------------------------------------------------


def test_an_empty_cxone_secret_fails_loudly_audited_and_counted(inbound, capsys, captured_logs):
    secrets = boto3.client("secretsmanager")
    secrets.put_secret_value(
        SecretId=inbound.stack.secrets["CxoneCredentialsSecret"],
        SecretString=json.dumps(
            {"client_id": "", "client_secret": "", "access_key_id": "", "access_key_secret": ""}
        ),
    )
    inbound.post(sms("msg-nocreds"))

    result = inbound.deliver()

    assert result.failed == 1  # comes back: an operator can fill the secret in
    output = capsys.readouterr().out
    logged = captured_logs.getvalue().splitlines()
    failure = next(json.loads(line) for line in logged if '"queue record failed"' in line)
    assert failure["level"] in {"WARNING", "ERROR"} and failure["reason_class"] == "ConfigurationError"
    assert "client_id" in failure["reason"]
    [record] = [r for r in inbound.audit("msg-nocreds") if r["action"] == "processing_failed"]
    assert record["outcome"] == "retry"
    assert "ConfigurationError" in record["reason"] and "client_id" in record["reason"]
    metrics = emf_metrics(output)
    assert any(
        name == "RecordsFailed" and dims.get("reason") == "ConfigurationError" for name, dims in metrics
    )
    assert "CxoneLatency" not in {name for name, _ in metrics}  # nothing reached CXone


def test_messages_routed_is_counted_once_however_often_the_store_is_retried(inbound, capsys):
    inbound.post(sms("msg-retried"))
    inbound.cxone.add_fault(status=429, retry_after=0, path_prefix="/dfo/3.0/channels", count=20)
    assert inbound.deliver().failed == 1
    inbound.cxone.clear_faults()
    assert inbound.deliver().succeeded == 1

    routed = [name for name, _ in emf_metrics(capsys.readouterr().out) if name == "MessagesRouted"]
    assert routed == ["MessagesRouted"]


def test_a_discovery_failure_counts_as_a_failed_cxone_request(inbound, capsys):
    # API bases discovered through cxone-configuration (no api_base_url), which is failing.
    inbound.start_consumer(api_base_url=None, dfo_base_url=inbound.cxone.url)
    inbound.cxone.add_fault(status=500, path_prefix="/.well-known/cxone-configuration")
    inbound.post(sms("msg-discovery"))

    assert inbound.deliver().failed == 1

    names = [name for name, _ in emf_metrics(capsys.readouterr().out)]
    assert "CxoneRequestFailed" in names and "CxoneLatency" not in names


# At-least-once safety --------------------------------------------------------------------


def test_a_store_that_landed_before_a_timeout_is_success_on_redelivery(inbound):
    inbound.post(sms("msg-landed"))
    # An earlier attempt reached DFO but its answer was lost (a timeout after CXone acted), so DFO
    # already holds the message; the retry carries no Idempotency-Key DFO would recognise.
    earlier = requests.post(
        f"{inbound.cxone.url}/dfo/3.0/channels/sms-channel/messages",
        headers={"Authorization": f"Bearer {inbound.cxone.issue_token()}"},
        json={
            "idOnExternalPlatform": "msg-landed",
            "direction": "inbound",
            "thread": {"idOnExternalPlatform": "+14155552671"},
            "messageContent": {"type": "TEXT", "payload": {"text": "Hi, my invoice shows a wrong amount"}},
        },
        timeout=10,
    )
    assert earlier.status_code == 201

    result = inbound.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert len(inbound.stored_in_cxone()) == 1
    [stored] = [r for r in inbound.audit("msg-landed") if r["action"] == "cxone_stored"]
    assert stored["details"]["already_stored"] is True
    assert len(inbound.ticketing.tickets()) == 1


def test_idempotency_records_hold_no_message_text(inbound):
    text = "My card ending 4242 was charged twice, call me on 415 555 2671"
    inbound.post(sms("msg-private", text))
    inbound.drain()

    records = json.dumps(inbound.idempotency_records(), default=str)
    assert inbound.ticketing.tickets()  # the message was processed
    assert "charged twice" not in records and "4242" not in records and "2671" not in records


# The intake's own checks, at their edges ---------------------------------------------------

FROZEN = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)  # any moment: the intake's clock is set to it
MAX_AGE = 7 * 86400  # the deployed default, MAX_MESSAGE_AGE_SECONDS


@pytest.fixture
def frozen(inbound, monkeypatch) -> InboundHarness:
    """The API function's intake on a clock that stands still at FROZEN."""
    monkeypatch.setattr(inbound.api.intake, "_clock", FROZEN.timestamp)
    return inbound


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (timedelta(seconds=300), None),  # up to 5 minutes ahead: the sender's clock may run fast
        (timedelta(seconds=301), "is in the future"),
        (-timedelta(seconds=MAX_AGE), None),  # exactly as old as allowed
        (-timedelta(seconds=MAX_AGE + 1), f"is older than {MAX_AGE} seconds"),
    ],
    ids=["skew-limit", "past-skew", "age-limit", "past-age"],
)
def test_a_timestamp_is_judged_against_the_intake_clock_at_its_edges(frozen, offset, problem):
    status, answer = frozen.post(sms("msg-edge", timestamp=iso_utc(FROZEN + offset)))
    if problem is None:
        assert status == 202
    else:
        assert (status, answer["fields"]) == (422, [{"field": "timestamp", "message": problem}])


def test_a_message_without_opt_in_names_the_field(inbound):
    body = {key: value for key, value in sms("msg-no-opt-in").items() if key != "opt_in"}
    status, answer = inbound.post(body)
    assert (status, answer["fields"]) == (422, [{"field": "opt_in", "message": "Field required"}])


def test_a_national_number_is_read_in_the_default_region_and_a_bad_one_says_why(inbound):
    assert inbound.post(sms("msg-national", sender="(415) 555-2671"))[0] == 202
    [body] = inbound.queued_bodies("InboundSmsQueue")
    assert (body["sender"], body["opt_in"]) == ("+14155552671", True)

    status, answer = inbound.post(sms("msg-bad-number", sender="+1 099 555 2671"))
    [problem] = answer["fields"]
    assert (status, problem["field"]) == (422, "from")
    assert problem["message"] and problem["message"] != "None"


def test_a_spam_refusal_is_audited_with_the_masked_number_and_the_api_request_id(inbound):
    status, answer = inbound.post(sms("msg-spam-audit", "Free lottery for you"))
    assert (status, answer["reason"]) == (422, "spam")
    [record] = inbound.audit("msg-spam-audit")
    assert (record["reason"], record["phone_masked"]) == ("spam", "***2671")
    assert record["correlation_id"] == inbound.last_request_id


def test_national_numbers_are_read_in_the_configured_region(inbound, monkeypatch):
    monkeypatch.setattr(inbound.api.intake, "_region", "GB")  # DEFAULT_PHONE_REGION=GB
    assert inbound.post(sms("msg-uk", sender="020 7946 0958", recipient="07911 123456"))[0] == 202
    [body] = inbound.queued_bodies("InboundSmsQueue")
    assert (body["sender"], body["recipient"]) == ("+442079460958", "+447911123456")
