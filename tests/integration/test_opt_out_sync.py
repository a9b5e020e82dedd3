"""The opt-out consumer through its handler: every opted-out number into the DNC group of both
CXone environments (primary, group 1; emea, group 7, each with its own credentials), one call per
environment per batch, with CXone's per-record answers, faults and retries."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import boto3
import pytest

from cxone_relay.platform.data.consent import ConsentStatus
from local.builders import emf_metrics, stored_fields
from local.builders import inbound_sms as sms
from local.template import LOCAL_EMEA_SECRET
from tests.dashboard import assert_matches_dashboard
from tests.integration.consent_harness import CLIENTS, GROUPS, ConsentHarness, dnc_path
from tests.integration.inbound_harness import InboundHarness

A, B, C = "+14155552671", "+442079460958", "+33612345678"
KEY = re.compile(r"dnc-add-[0-9a-f]{40}")


@pytest.fixture
def consent(stack, cxone_sim, monkeypatch) -> ConsentHarness:
    return ConsentHarness(stack, cxone_sim, monkeypatch)


def digits(phone: str) -> str:
    return phone.lstrip("+")


def z(moment) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def keys_sent(consent: ConsentHarness, environment: str) -> list[str]:
    return [call["headers"]["idempotency-key"] for call in consent.dnc_calls(environment)]


def statuses(consent: ConsentHarness, environment: str) -> list[int]:
    return [call["status"] for call in consent.dnc_calls(environment)]


def details(consent: ConsentHarness, subject: str, action: str, environment: str | None = None) -> dict:
    [record] = [
        r
        for r in consent.audit(subject)
        if r["action"] == action and (environment is None or r["details"].get("environment") == environment)
    ]
    return record


def _state(consent: ConsentHarness) -> list[dict]:
    """The state table's items as DynamoDB returns them."""
    items: list[dict] = consent.dynamodb.scan(TableName=consent.stack.tables["StateTable"])["Items"]
    return items


def _counts(output: str, metric: str) -> list[tuple[float, dict[str, str]]]:
    """(value, dimensions) of every EMF count of `metric`, in order."""
    found = []
    for line in output.splitlines():
        if line.startswith('{"_aws"') and f'"{metric}"' in line:
            document = json.loads(line)
            dimensions = {k: v for k, v in document.items() if isinstance(v, str)}
            found.extend((value, dimensions) for value in document[metric])
    return found


def logged(captured_logs, message: str) -> list[dict]:
    """The JSON log lines whose message is exactly `message`, in order."""
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    return [line for line in lines if line["message"] == message]


def answered(captured_logs) -> list[tuple]:
    """(level, environment, sent, applied, failed, error_count) of each "DNC call answered" line."""
    return [
        (a["level"], a["environment"], a["sent"], a["applied"], a["failed"], a["error_count"])
        for a in logged(captured_logs, "DNC call answered")
    ]


def lags(output: str) -> list[float]:
    """Every DncSyncLag value emitted, in order; each is declared in seconds."""
    values = []
    for line in output.splitlines():
        if line.startswith('{"_aws"') and "DncSyncLag" in line:
            document = json.loads(line)
            units = [
                metric["Unit"]
                for directive in document["_aws"]["CloudWatchMetrics"]
                for metric in directive["Metrics"]
                if metric["Name"] == "DncSyncLag"
            ]
            assert units == ["Seconds"]
            values.extend(document["DncSyncLag"])
    return values


# One call per environment per batch ---------------------------------------------------------


def test_100_opt_outs_in_one_batch_make_one_dnc_call_per_environment(consent, capsys, local_time_not_utc):
    phones = [f"+1415555{n:04d}" for n in range(2000, 2100)]
    sources = ["web", "ivr", "agent", "api"]
    references = []
    for n, phone in enumerate(phones):
        assert consent.opt_out(phone, sources[n % 4])[0] == 202
        references.append(consent.last_request_id)
    requested_at = consent.clock.now
    consent.clock.advance(seconds=45)

    result = consent.deliver()

    assert (result.received, result.succeeded, result.failed) == (100, 100, 0)
    for environment in ("primary", "emea"):
        [call] = consent.dnc_calls(environment)
        assert call["status"] == 200
        assert call["body"] == {"dncGroupRecords": [{"phoneNumber": digits(p)} for p in sorted(phones)]}
        assert KEY.fullmatch(call["headers"]["idempotency-key"])
        assert call["client_id"] == CLIENTS[environment]  # each environment with its own credentials
        assert consent.dnc(environment) == sorted(digits(p) for p in phones)
    assert keys_sent(consent, "primary") != keys_sent(consent, "emea")
    # Audit per number and environment, then once when it is in both; never a number.
    first = references[0]
    assert consent.actions(first) == [
        ("opt_out_queued", "accepted", None),
        ("dnc_applied", "ok", "primary"),
        ("dnc_applied", "ok", "emea"),
        ("dnc_complete", "ok", None),
    ]
    assert details(consent, first, "dnc_applied", "emea")["details"] == {
        "source": "web",
        "environment": "emea",
        "group_id": "7",
        "requested_at": z(requested_at),
        "applied_at": z(consent.clock.now),
        "already_listed": False,
    }
    complete = details(consent, first, "dnc_complete")
    assert complete["phone_masked"] == "***2000"
    assert complete["details"] == {
        "source": "web",
        "requested_at": z(requested_at),
        "applied_at": z(consent.clock.now),
        "lag_seconds": 45,
        "environments": ["primary", "emea"],
    }
    assert len([r for r in consent.audit() if r["action"] == "dnc_complete"]) == 100
    everything = json.dumps(consent.audit(), default=str) + json.dumps(
        consent.dynamodb.scan(TableName=consent.stack.tables["StateTable"])["Items"]
    )
    assert not any(digits(phone) in everything for phone in phones)
    assert lags(capsys.readouterr().out) == [45.0] * 100
    assert consent.depth() == 0


def test_the_sync_state_says_when_each_environment_got_each_number(consent):
    consent.opt_out(A, "ivr")
    reference, requested_at = consent.last_request_id, consent.clock.now
    consent.clock.advance(seconds=5)
    consent.deliver()

    synced = consent.syncs().of_number(A)

    assert [(s.environment, s.group_id, s.source, s.reference) for s in synced] == [
        ("emea", "7", "ivr", reference),
        ("primary", "1", "ivr", reference),
    ]
    assert {s.applied_at for s in synced} == {consent.clock.now}
    assert {s.requested_at for s in synced} == {requested_at}


# Dedupe ------------------------------------------------------------------------------------


def test_duplicates_in_a_batch_are_sent_once_and_every_copy_completes(consent, capsys):
    consent.opt_out("(415) 555-2671", "web")
    web = consent.last_request_id
    consent.opt_out("tel:+1-415-555-2671", "ivr")
    ivr = consent.last_request_id
    consent.opt_out(B, "agent")
    consent.queue({"phone": A, "source": "sms", "reference": "msg-77", "requested_at": z(consent.clock.now)})

    result = consent.deliver()

    assert (result.received, result.succeeded) == (4, 4)
    assert consent.sent("primary") == consent.sent("emea") == [sorted([digits(A), digits(B)])]
    for subject in (web, ivr, "msg-77"):
        assert [a for a in consent.actions(subject) if a[0].startswith("dnc")] == [
            ("dnc_applied", "ok", "primary"),
            ("dnc_applied", "ok", "emea"),
            ("dnc_complete", "ok", None),
        ]
    output = capsys.readouterr().out
    assert '"OptOutsDeduplicated":[2.0]' in output
    assert lags(output) == [0.0, 0.0]  # one per number, not per record


def test_a_number_already_in_every_environment_is_not_sent_again(consent, capsys):
    consent.opt_out(A)
    consent.clock.advance(seconds=10)
    consent.deliver()
    first_applied = consent.clock.now
    consent.clock.advance(minutes=5)
    capsys.readouterr()

    consent.opt_out(A, "agent")  # opted out again
    again, again_at = consent.last_request_id, consent.clock.now
    consent.opt_out(B)
    result = consent.deliver()

    assert result.failed == 0
    assert consent.sent("primary") == consent.sent("emea") == [[digits(A)], [digits(B)]]
    assert consent.actions(again)[1:] == [
        ("dnc_already_synced", "ok", "primary"),
        ("dnc_already_synced", "ok", "emea"),
    ]
    assert details(consent, again, "dnc_already_synced", "emea")["details"] == {
        "source": "agent",
        "environment": "emea",
        "group_id": "7",
        "requested_at": z(again_at),
        "applied_at": z(first_applied),
    }
    assert '"OptOutsDeduplicated":[1.0]' in capsys.readouterr().out

    consent.opt_out(A, "web")
    consent.opt_out(A, "ivr")
    consent.opt_out(B, "web")
    consent.deliver()
    assert len(consent.dnc_calls("primary")) == len(consent.dnc_calls("emea")) == 2  # nothing new to send
    # Each of the three records once: A's copy is not counted again for A being synced already.
    assert [value for value, _ in _counts(capsys.readouterr().out, "OptOutsDeduplicated")] == [3.0]


def test_a_number_sent_by_several_records_is_synced_as_its_first_request(consent, capsys):
    consent.opt_out(A, "ivr")
    first, first_at = consent.last_request_id, consent.clock.now
    consent.clock.advance(seconds=30.25)
    consent.opt_out("415-555-2671", "web")
    second = consent.last_request_id
    # Queued last, sent first: a STOP delivered late.
    stop_at = first_at - timedelta(seconds=10)
    consent.queue({"phone": A, "source": "sms", "reference": "msg-early", "requested_at": z(stop_at)})
    consent.clock.advance(seconds=30.0004)  # applied 60.2504s after the API's first request

    consent.deliver()

    assert {(s.source, s.reference, s.requested_at) for s in consent.syncs().of_number(A)} == {
        ("sms", "msg-early", stop_at)
    }
    # The audit's lag is to the millisecond; the metric's is not rounded.
    assert details(consent, "msg-early", "dnc_complete")["details"]["lag_seconds"] == Decimal("70.25")
    assert details(consent, first, "dnc_complete")["details"]["lag_seconds"] == Decimal("60.25")
    assert details(consent, second, "dnc_complete")["details"]["lag_seconds"] == Decimal("30")
    assert lags(capsys.readouterr().out) == [70.2504]  # one number, lagging from its first request


# Per-record answers ------------------------------------------------------------------------


def test_a_200_with_per_record_errors_retries_only_the_failed_records(consent, capsys, captured_logs):
    phones = [A, B, C, "+4930901820", "+61293744000"]
    references = {}
    for phone in phones:
        consent.opt_out(phone)
        references[phone] = consent.last_request_id
    consent.cxone.fail_dnc_records(
        [digits(B), digits(C)], "Temporary failure, try again", count=1, group_id="7"
    )

    first = consent.deliver()

    assert first.failed == 2
    assert consent.sent("primary") == [sorted(digits(p) for p in phones)]
    assert consent.sent("emea") == [sorted(digits(p) for p in phones)]  # answered 200, two records failed
    assert sorted(consent.dnc("emea")) == sorted(digits(p) for p in phones if p not in (B, C))
    failed = details(consent, references[B], "dnc_failed", "emea")
    assert (failed["outcome"], failed["reason"]) == ("retry", "Temporary failure, try again")
    assert failed["details"] == {
        "source": "web",
        "environment": "emea",
        "group_id": "7",
        "requested_at": z(consent.clock.now),
    }
    [answer] = [item for item in _state(consent) if item["pk"]["S"].startswith("dnc-call#")]
    assert (answer["sk"]["S"], answer["answers"]["N"], answer["applied"]["N"], answer["failed"]["N"]) == (
        "env#emea",
        "1",
        "3",
        "2",
    )
    assert answered(captured_logs) == [("INFO", "primary", 5, 5, 0, 0), ("INFO", "emea", 5, 3, 2, 2)]
    assert [
        (f["level"], f["reason_class"], f["reason"], f["dead_lettered"])
        for f in logged(captured_logs, "queue record failed")
    ] == [
        (
            "WARNING",
            "DncNotApplied",
            "cxone: DNC record not applied in emea: Temporary failure, try again",
            False,
        )
    ] * 2
    output = capsys.readouterr().out
    assert [(dims["environment"], value) for value, dims in _counts(output, "DncSyncFailed")] == [
        ("emea", 2.0)
    ]
    assert [(dims["environment"], value) for value, dims in _counts(output, "DncRecordsApplied")] == [
        ("primary", 5.0),
        ("emea", 3.0),
    ]

    second = consent.deliver()

    assert (second.received, second.succeeded, second.failed) == (2, 2, 0)
    assert consent.sent("primary") == [sorted(digits(p) for p in phones)]  # not called again
    assert consent.sent("emea")[1] == sorted([digits(B), digits(C)])
    assert KEY.fullmatch(keys_sent(consent, "emea")[1])
    assert sorted(consent.dnc("emea")) == sorted(digits(p) for p in phones)
    assert [a for a in consent.actions(references[B]) if a[0].startswith("dnc")] == [
        ("dnc_applied", "ok", "primary"),
        ("dnc_failed", "retry", "emea"),
        ("dnc_already_synced", "ok", "primary"),
        ("dnc_applied", "ok", "emea"),
        ("dnc_complete", "ok", None),
    ]
    output = capsys.readouterr().out
    assert [(dims["environment"], value) for value, dims in _counts(output, "DncRecordsApplied")] == [
        ("emea", 2.0)
    ]
    assert _counts(output, "DncSyncFailed") == []
    assert answered(captured_logs)[2:] == [("INFO", "emea", 2, 2, 0, 0)]


def test_content_answered_with_failures_is_retried_under_a_new_idempotency_key(consent):
    consent.opt_out(A)
    consent.cxone.fail_dnc_records([digits(A)], "Record locked", count=2, group_id="7")

    for _ in range(3):
        consent.deliver()

    emea_keys = keys_sent(consent, "emea")
    assert emea_keys == [emea_keys[0], f"{emea_keys[0]}-1", f"{emea_keys[0]}-2"]
    assert statuses(consent, "emea") == [200, 200, 200]
    assert consent.dnc("emea") == [digits(A)]
    assert len(consent.dnc_calls("primary")) == 1
    assert consent.depth() == 0


def test_a_permanent_per_record_refusal_is_audited_as_failed_and_dead_lettered(consent):
    # An inbound STOP's opt-out, which carries its request's correlation id.
    requested_at = consent.clock.now - timedelta(seconds=3)
    refused = "msg-41"
    consent.queue(
        {
            "phone": A,
            "source": "sms",
            "reference": refused,
            "requested_at": z(requested_at),
            "correlation_id": "corr-41",
        }
    )
    consent.opt_out(B)
    consent.cxone.fail_dnc_records([digits(A)], "Invalid phoneNumber for this business unit", group_id="7")

    result = consent.deliver()

    assert (result.succeeded, result.failed) == (2, 0)  # nothing to retry: A went to the DLQ itself
    assert consent.dnc("primary") == sorted([digits(A), digits(B)])
    assert consent.dnc("emea") == [digits(B)]
    about = {
        "workflow": "consent",
        "subject": refused,
        "phone_hash": consent.hasher().fingerprint(A),
        "phone_masked": "***2671",
        "correlation_id": "corr-41",
    }
    assert stored_fields(details(consent, refused, "dnc_applied", "primary")) == about | {
        "action": "dnc_applied",
        "outcome": "ok",
        "details": {
            "source": "sms",
            "environment": "primary",
            "group_id": "1",
            "requested_at": z(requested_at),
            "applied_at": z(consent.clock.now),
            "already_listed": False,
        },
    }
    assert stored_fields(details(consent, refused, "dnc_refused", "emea")) == about | {
        "action": "dnc_refused",
        "outcome": "permanent_failure",
        "reason": "Invalid phoneNumber for this business unit",
        "details": {"source": "sms", "environment": "emea", "group_id": "7", "requested_at": z(requested_at)},
    }
    [(body, attributes)] = consent.dead_letters()
    assert json.loads(body)["reference"] == refused
    assert attributes["failure_class"] == "DncRecordRefused"
    assert attributes["failure_reason"] == (
        "cxone: DNC record refused in emea: Invalid phoneNumber for this business unit"
    )
    # Dead-lettered under the opt-out's own reference, beside its DNC decisions.
    assert [a[0] for a in consent.actions(refused)] == ["dnc_applied", "dnc_refused", "dead_lettered"]
    dead_lettered = stored_fields(details(consent, refused, "dead_lettered"))
    assert {k: dead_lettered[k] for k in (*about, "outcome", "reason")} == about | {
        "outcome": "permanent_failure",
        "reason": "cxone: DNC record refused in emea: Invalid phoneNumber for this business unit",
    }
    assert consent.depth() == 0


def test_an_already_listed_answer_is_applied(consent):
    consent.opt_out(A)
    consent.cxone.fail_dnc_records([digits(A)], "Phone number already exists in the DNC group", group_id="7")

    result = consent.deliver()

    assert result.failed == 0
    applied = details(consent, consent.last_request_id, "dnc_applied", "emea")
    assert applied["details"]["already_listed"] is True
    assert ("dnc_complete", "ok", None) in consent.actions(consent.last_request_id)


# Faults ------------------------------------------------------------------------------------


def test_with_one_environment_failing_503_twice_the_healthy_one_gets_the_batch_once(consent):
    for phone in (A, B, C):
        consent.opt_out(phone)
    consent.cxone.add_fault(status=503, path_prefix=dnc_path(GROUPS["emea"]), count=2)

    result = consent.deliver()

    assert (result.succeeded, result.failed) == (3, 0)
    assert statuses(consent, "primary") == [200]
    assert statuses(consent, "emea") == [503, 503, 200]
    assert len(set(keys_sent(consent, "emea"))) == 1  # the retries are the same call
    assert {json.dumps(call["body"]) for call in consent.dnc_calls("emea")} == {
        json.dumps({"dncGroupRecords": [{"phoneNumber": digits(p)} for p in sorted((A, B, C))]})
    }
    assert consent.dnc("emea") == consent.dnc("primary") == sorted(digits(p) for p in (A, B, C))
    assert len(consent.sleeps) == 2  # backoff between the attempts, waited on the test's sleeper


def test_an_environment_down_past_its_retries_gets_the_batch_later_and_alone(consent, capsys, captured_logs):
    consent.start_consumer(CXONE_MAX_ATTEMPTS="2")
    consent.opt_out(A)
    reference, requested_at = consent.last_request_id, consent.clock.now
    consent.opt_out(B)
    consent.cxone.add_fault(status=503, path_prefix=dnc_path(GROUPS["emea"]), count=2)

    first = consent.deliver()

    assert first.failed == 2
    assert statuses(consent, "primary") == [200]
    assert statuses(consent, "emea") == [503, 503]
    failed = details(consent, reference, "dnc_failed", "emea")
    assert failed["outcome"] == "retry" and "HTTP 503" in failed["reason"]
    assert failed["reason"].startswith("RetryableUpstreamError: cxone: POST ")
    assert not [a for a in consent.actions(reference) if a[0] == "dnc_complete"]
    warnings = [
        json.loads(line) for line in captured_logs.getvalue().splitlines() if '"DNC call failed"' in line
    ]
    assert [(w["environment"], w["numbers"], w["reason_class"]) for w in warnings] == [
        ("emea", 2, "RetryableUpstreamError")
    ]
    failures = [
        (value, dims["environment"]) for value, dims in _counts(capsys.readouterr().out, "DncSyncFailed")
    ]
    assert failures == [(2.0, "emea")]

    consent.clock.advance(seconds=60)
    second = consent.deliver()

    assert (second.received, second.succeeded, second.failed) == (2, 2, 0)
    assert statuses(consent, "primary") == [200]  # never resent where it already is
    assert statuses(consent, "emea") == [503, 503, 200]
    assert len(set(keys_sent(consent, "emea"))) == 1  # no answer came: the same call, the same key
    complete = details(consent, reference, "dnc_complete")
    assert complete["details"]["requested_at"] == z(requested_at)
    assert complete["details"]["applied_at"] == z(requested_at + timedelta(seconds=60))
    assert complete["details"]["lag_seconds"] == 60
    answered = [
        json.loads(line) for line in captured_logs.getvalue().splitlines() if '"DNC call answered"' in line
    ]
    assert [(a["environment"], a["sent"], a["applied"], a["failed"], a["error_count"]) for a in answered] == [
        ("primary", 2, 2, 0, 0),
        ("emea", 2, 2, 0, 0),
    ]
    assert lags(capsys.readouterr().out) == [60.0, 60.0]


def test_a_429_with_retry_after_is_honoured(consent):
    consent.opt_out(A)
    consent.cxone.add_fault(status=429, retry_after=7, path_prefix=dnc_path(GROUPS["primary"]), count=1)

    result = consent.deliver()

    assert result.failed == 0
    assert consent.sleeps == [7.0]
    assert statuses(consent, "primary") == [429, 200]
    assert consent.dnc("primary") == consent.dnc("emea") == [digits(A)]


def test_a_retry_after_longer_than_an_invocation_hands_the_records_back(consent):
    consent.opt_out(A)
    consent.cxone.add_fault(status=429, retry_after=120, path_prefix=dnc_path(GROUPS["primary"]), count=1)

    first = consent.deliver()

    assert first.failed == 1 and consent.sleeps == []
    assert consent.dnc("emea") == [digits(A)] and consent.dnc("primary") == []
    consent.deliver()
    assert statuses(consent, "primary") == [429, 200] and statuses(consent, "emea") == [200]


def test_an_environment_refusing_the_whole_call_dead_letters_only_after_the_others_have_it(
    consent, capsys, captured_logs
):
    consent.opt_out(A)
    consent.cxone.add_fault(status=403, path_prefix=dnc_path(GROUPS["emea"]), count=1)

    result = consent.deliver()

    assert result.failed == 0
    refused = details(consent, consent.last_request_id, "dnc_refused", "emea")
    assert (refused["outcome"], refused["reason"], refused["details"]) == (
        "permanent_failure",
        f"PermanentUpstreamError: cxone: POST {dnc_path('7')} refused (HTTP 403)",
        {"source": "web", "environment": "emea", "group_id": "7", "requested_at": z(consent.clock.now)},
    )
    assert [
        (w["level"], w["environment"], w["numbers"], w["reason_class"])
        for w in logged(captured_logs, "DNC call failed")
    ] == [("WARNING", "emea", 1, "PermanentUpstreamError")]
    assert answered(captured_logs) == [("INFO", "primary", 1, 1, 0, 0)]
    output = capsys.readouterr().out
    assert [(dims["environment"], value) for value, dims in _counts(output, "DncSyncFailed")] == [
        ("emea", 1.0)
    ]
    assert [(dims["environment"], value) for value, dims in _counts(output, "DncRecordsApplied")] == [
        ("primary", 1.0)
    ]
    assert consent.dnc("primary") == [digits(A)] and consent.dnc("emea") == []
    [(body, attributes)] = consent.dead_letters()
    assert attributes["failure_class"] == "DncRecordRefused"
    assert "HTTP 403" in attributes["failure_reason"]
    assert "PermanentUpstreamError" in attributes["failure_reason"]
    [answer] = [item for item in _state(consent) if item["pk"]["S"].startswith("dnc-call#")]
    assert (answer["sk"]["S"], answer["answers"]["N"], answer["applied"]["N"], answer["failed"]["N"]) == (
        "env#emea",
        "1",
        "0",
        "1",
    )

    # Fixed (say, the group's permissions), the DLQ is replayed: emea alone, under a new key.
    consent.queue(json.loads(body))
    replayed = consent.deliver()

    assert (replayed.received, replayed.failed) == (1, 0)
    assert statuses(consent, "primary") == [200]
    first_key, second_key = keys_sent(consent, "emea")
    assert second_key == f"{first_key}-1"
    assert consent.dnc("emea") == [digits(A)]


def test_a_configuration_problem_in_one_environment_is_retried_and_spares_the_other(consent):
    # The emea secret still holds the empty values of a first deploy.
    boto3.client("secretsmanager").put_secret_value(
        SecretId=LOCAL_EMEA_SECRET, SecretString='{"client_id": ""}'
    )
    consent.opt_out(A)

    result = consent.deliver()

    assert result.failed == 1
    assert consent.dnc("primary") == [digits(A)]
    failed = details(consent, consent.last_request_id, "dnc_failed", "emea")
    assert failed["reason"].startswith("ConfigurationError: secret cxone-relay-local/cxone-credentials-emea")


# Every way in ends in both environments ------------------------------------------------------


def test_an_inbound_stop_ends_as_a_dnc_record_in_every_environment(
    stack, cxone_sim, ticketing_sim, monkeypatch
):
    inbound = InboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch)
    consent = ConsentHarness(stack, cxone_sim, monkeypatch)

    assert inbound.post(sms("msg-stop", "STOP please", sender="+14155552699", opt_in=False))[0] == 202
    inbound.deliver()
    result = consent.deliver()

    assert (result.received, result.succeeded) == (1, 1)
    assert consent.dnc("primary") == consent.dnc("emea") == ["14155552699"]
    assert consent.actions("msg-stop") == [
        ("dnc_applied", "ok", "primary"),
        ("dnc_applied", "ok", "emea"),
        ("dnc_complete", "ok", None),
    ]
    assert details(consent, "msg-stop", "dnc_complete")["details"]["source"] == "sms"
    [entry] = consent.ledger().history("+14155552699")  # the consumer's record was the STOP's own
    assert (entry.source, entry.reference) == ("sms", "msg-stop")


def test_an_opt_in_after_an_opt_out_is_ordered_by_time_and_keeps_the_number_off_dnc(consent, capsys):
    consent.opt_out(A, "ivr")
    opt_out = consent.last_request_id
    consent.clock.advance(seconds=2)
    consent.opt_in(A, "web", evidence="web form")
    opted_in_at = consent.clock.now

    result = consent.deliver()

    assert result.failed == 0
    assert consent.dnc_calls("primary") == consent.dnc_calls("emea") == []
    assert consent.ledger().status(A) is ConsentStatus.OPTED_IN
    skipped = details(consent, opt_out, "dnc_skipped")
    assert (skipped["outcome"], skipped["reason"]) == ("superseded", "a newer opt-in stands")
    assert skipped["details"] == {
        "source": "ivr",
        "requested_at": z(opted_in_at - timedelta(seconds=2)),
        "consent_updated_at": opted_in_at.isoformat(timespec="milliseconds"),
    }
    assert '"OptOutsSuperseded":[1.0]' in capsys.readouterr().out


def test_every_record_of_a_superseded_number_counts_as_superseded_and_none_as_deduplicated(consent, capsys):
    consent.opt_out(A, "ivr")
    consent.opt_out(A, "sms")
    consent.opt_out(B, "web")
    consent.clock.advance(seconds=2)
    consent.opt_in(A, "web", evidence="web form")

    consent.deliver()

    output = capsys.readouterr().out
    assert consent.sent("primary") == consent.sent("emea") == [[digits(B)]]
    assert [value for value, _ in _counts(output, "OptOutsSuperseded")] == [2.0]
    assert _counts(output, "OptOutsDeduplicated") == []


def test_an_opt_out_after_an_opt_in_is_synced(consent):
    consent.opt_in(A, "web")
    consent.clock.advance(seconds=2)
    consent.opt_out(A, "agent")

    consent.deliver()

    assert consent.ledger().status(A) is ConsentStatus.OPTED_OUT
    assert consent.dnc("primary") == consent.dnc("emea") == [digits(A)]


def test_a_late_delivered_stop_older_than_an_opt_in_changes_nothing(consent):
    consent.opt_in(A, "web")
    stop_sent_at = consent.clock.now - timedelta(minutes=10)
    consent.queue({"phone": A, "source": "sms", "reference": "msg-old", "requested_at": z(stop_sent_at)})

    result = consent.deliver()

    assert result.failed == 0
    assert consent.ledger().status(A) is ConsentStatus.OPTED_IN
    oldest = consent.ledger().history(A)[0]  # kept, in time order, as the consumer recorded it
    assert (oldest.status, oldest.source, oldest.reference) == (ConsentStatus.OPTED_OUT, "sms", "msg-old")
    assert consent.dnc_calls("emea") == []
    assert consent.actions("msg-old") == [("dnc_skipped", "superseded", None)]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(
            {"phone": "4155552671", "source": "web", "reference": "r-1", "requested_at": "2026-01-01T00:00Z"}
        ),
        json.dumps(
            {
                "phone": "+10995552671",
                "source": "web",
                "reference": "r-1",
                "requested_at": "2026-01-01T00:00Z",
            }
        ),
        json.dumps({"phone": A, "source": "email", "reference": "r-1", "requested_at": "2026-01-01T00:00Z"}),
        json.dumps(
            {"phone": A, "source": "web", "reference": "has space", "requested_at": "2026-01-01T00:00Z"}
        ),
        json.dumps({"phone": A, "source": "web", "reference": "r-1"}),
        json.dumps(
            {"phone": A, "source": "web", "reference": "r-1", "requested_at": "0001-01-01T00:30+01:00"}
        ),
    ],
)
def test_a_malformed_queue_record_is_dead_lettered_alone(consent, body):
    consent.sqs.send_message(QueueUrl=consent.queue_url, MessageBody=body)
    consent.opt_out(B)

    result = consent.deliver()

    assert (result.received, result.failed) == (2, 0)
    assert consent.dnc("primary") == consent.dnc("emea") == [digits(B)]
    [(dead, attributes)] = consent.dead_letters()
    assert dead == body
    assert attributes["failure_class"] in {"ValidationError", "JSONDecodeError"}


def test_the_consumer_metrics_match_their_dashboard_queries(consent, capsys):
    consent.opt_out(A)
    consent.opt_out(A, "ivr")  # deduplicated
    consent.opt_out(B)
    consent.opt_out(C)
    consent.clock.advance(seconds=1)
    consent.opt_in(C)  # supersedes C's opt-out
    consent.opt_out("12")  # rejected
    consent.cxone.fail_dnc_records([digits(B)], "Record locked", count=1, group_id="7")
    consent.deliver()
    consent.deliver()

    emitted = emf_metrics(capsys.readouterr().out)
    names = {name for name, _ in emitted}
    assert names >= {
        "ConsentRequests",
        "ConsentRequestsRejected",
        "DncRecordsApplied",
        "DncSyncFailed",
        "DncSyncLag",
        "OptOutsDeduplicated",
        "OptOutsSuperseded",
    }
    assert {dims["environment"] for name, dims in emitted if name == "DncRecordsApplied"} == {
        "primary",
        "emea",
    }
    assert {dims["environment"] for name, dims in emitted if name == "DncSyncFailed"} == {"emea"}
    assert_matches_dashboard(emitted)


def test_a_number_refused_in_one_environment_still_reaches_the_others_before_the_dlq(consent, captured_logs):
    consent.start_consumer(CXONE_MAX_ATTEMPTS="1")
    consent.opt_out(A)
    consent.cxone.fail_dnc_records([digits(A)], "Number not allowed in this group", group_id="7")
    consent.cxone.add_fault(status=503, path_prefix=dnc_path(GROUPS["primary"]), count=1)

    first = consent.deliver()

    # primary may still take it: the record comes back, naming both problems.
    assert (first.failed, consent.dead_letters()) == (1, [])
    assert [a for a in consent.actions(consent.last_request_id) if a[0].startswith("dnc")] == [
        ("dnc_failed", "retry", "primary"),
        ("dnc_refused", "permanent_failure", "emea"),
    ]
    refused = details(consent, consent.last_request_id, "dnc_refused", "emea")
    assert (refused["outcome"], refused["reason"], refused["details"]) == (
        "permanent_failure",
        "Number not allowed in this group",
        {"source": "web", "environment": "emea", "group_id": "7", "requested_at": z(consent.clock.now)},
    )
    [failure] = logged(captured_logs, "queue record failed")
    assert (failure["level"], failure["reason_class"], failure["dead_lettered"]) == (
        "WARNING",
        "DncNotApplied",
        False,
    )
    # Both problems, the one that may pass and the one that cannot.
    assert failure["reason"] == (
        "cxone: DNC record not applied in emea: Number not allowed in this group;"
        f" primary: RetryableUpstreamError: cxone: POST {dnc_path('1')} gave up after HTTP 503 (HTTP 503)"
    )

    second = consent.deliver()

    assert (second.failed, consent.dnc("primary"), consent.dnc("emea")) == (0, [digits(A)], [])
    [(_, attributes)] = consent.dead_letters()
    assert (
        attributes["failure_reason"] == "cxone: DNC record refused in emea: Number not allowed in this group"
    )
