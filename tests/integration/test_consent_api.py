"""The consent API through its handler: opt-outs queued and recorded, opt-ins recorded with their
evidence, a number's consent looked up masked; bad input refused naming the field, with nothing
written."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from cxone_relay.platform.data.consent import ConsentStatus
from local.builders import emf_metrics, fullwidth, peek_messages
from local.events import LocalLambdaContext, api_gateway_event
from tests.integration.consent_harness import ConsentHarness

PHONE = "+14155552671"


@pytest.fixture
def consent(stack, cxone_sim, monkeypatch) -> ConsentHarness:
    return ConsentHarness(stack, cxone_sim, monkeypatch)


def _nothing_written(consent: ConsentHarness) -> bool:
    state = consent.dynamodb.scan(TableName=consent.stack.tables["StateTable"])["Items"]
    return consent.depth() == 0 and state == []


# POST /opt-out -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["web", "ivr", "sms", "agent", "api"])
def test_an_opt_out_is_queued_recorded_and_audited(consent, source):
    status, body = consent.opt_out(" (415) 555-2671 ", source)

    assert (status, body) == (202, {"status": "queued", "phone": PHONE})
    request_id = consent.last_request_id
    requested_at = consent.clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert consent.queued() == [
        {"phone": PHONE, "source": source, "reference": request_id, "requested_at": requested_at}
    ]
    # In the ledger at once: an outbound consent check refuses the number before DNC sync.
    ledger = consent.ledger()
    assert ledger.status(PHONE) is ConsentStatus.OPTED_OUT
    [entry] = ledger.history(PHONE)
    assert (entry.status, entry.source, entry.reference) == (ConsentStatus.OPTED_OUT, source, request_id)
    assert entry.occurred_at == consent.clock.now.isoformat(timespec="milliseconds")
    [record] = consent.audit(request_id)
    assert (record["action"], record["outcome"], record["phone_masked"]) == (
        "opt_out_queued",
        "accepted",
        "***2671",
    )
    assert record["details"] == {"source": source, "requested_at": requested_at}
    assert record["correlation_id"] == request_id
    assert "4155552671" not in json.dumps(consent.audit(), default=str)


def test_the_queued_opt_out_carries_the_request_id_as_correlation_attribute(consent):
    consent.opt_out(PHONE)
    [(_, attributes)] = peek_messages(consent.sqs, consent.queue_url)
    assert attributes == {"correlation_id": consent.last_request_id}


@pytest.mark.parametrize(
    ("phone", "region", "expected"),
    [
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("011 44 20 7946 0958", None, "+442079460958"),
        ("tel:+33-6-12-34-56-78", None, "+33612345678"),
        (fullwidth("+1 415 555 2671"), None, PHONE),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_the_number_is_read_with_the_bodys_region_or_the_default(consent, phone, region, expected):
    fields = {"region": region} if region else {}
    assert consent.opt_out(phone, **fields) == (202, {"status": "queued", "phone": expected})
    assert consent.queued()[0]["phone"] == expected


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"phone": "+1 099 555 2671", "source": "web"}, "phone", "not a valid number for its country"),
        ({"phone": "+1 415 555 267", "source": "web"}, "phone", "wrong length for its country"),
        ({"phone": "call me", "source": "web"}, "phone", "not a phone number"),
        ({"phone": "020 7946 0958", "source": "web"}, "phone", "wrong length for its country"),
        ({"phone": "020 7946 0958", "source": "web", "region": "ZZ"}, "region", None),
        ({"phone": PHONE, "source": "email"}, "source", None),
        ({"phone": PHONE, "source": "WEB"}, "source", None),
        ({"phone": PHONE}, "source", None),
        ({"source": "web"}, "phone", None),
        ({"phone": "   ", "source": "web"}, "phone", None),
        ({"phone": 14155552671, "source": "web"}, "phone", None),
        ({"phone": [PHONE], "source": "web"}, "phone", None),
        ({"phone": PHONE, "source": "web", "region": "GBR"}, "region", None),
        ({"phone": PHONE, "source": "web", "region": 44}, "region", None),
        (
            {"phone": PHONE, "source": "web", "region": "ZZ"},
            "region",
            "not a region phone numbers can be read for (ISO 3166-1 alpha-2, e.g. US)",
        ),
        ({"phone": "+1 415\u0000555 2671", "source": "web"}, "phone", None),
        ({"phone": "+" + "1" * 64, "source": "web"}, "phone", None),
    ],
)
def test_bad_input_is_422_naming_the_field_with_nothing_written(consent, body, field, message):
    status, answer = consent.post("/opt-out", body)

    assert status == 422
    assert answer["error"] == "validation_failed"
    assert field in [problem["field"] for problem in answer["fields"]]
    if message:
        assert answer["fields"] == [{"field": field, "message": message}]
    assert _nothing_written(consent)
    [record] = consent.audit()
    assert (record["subject"], record["action"], record["outcome"], record["reason"]) == (
        consent.last_request_id,
        "rejected",
        "rejected",
        "invalid_fields",
    )
    assert record["details"] == {"fields": [f"{p['field']}: {p['message']}" for p in answer["fields"]]}
    assert record["correlation_id"] == consent.last_request_id
    assert "phone_hash" not in record and "phone_masked" not in record


@pytest.mark.parametrize("raw", ['{"phone": "+14155552671", "source": ', "[1, 2]", "not json", ""])
def test_a_body_that_is_not_one_json_object_is_400(consent, raw):
    status, answer = consent.post("/opt-out", raw)
    assert status == 400
    assert answer["error"] in {"malformed_json", "not_an_object"}
    assert _nothing_written(consent)


def test_a_queue_that_cannot_be_reached_is_503_and_nothing_is_recorded(consent):
    consent.sqs.delete_queue(QueueUrl=consent.queue_url)
    status, answer = consent.opt_out(PHONE)
    assert (status, answer["error"]) == (503, "unavailable")
    assert consent.ledger().status(PHONE) is None


# POST /opt-in --------------------------------------------------------------------------------


def test_an_opt_in_is_recorded_with_its_evidence_and_audited(consent):
    status, body = consent.opt_in("415-555-2671", "agent", evidence="call 4411, recorded consent")

    assert (status, body) == (200, {"status": "recorded", "phone": PHONE, "consent": "opted_in"})
    ledger = consent.ledger()
    assert ledger.status(PHONE) is ConsentStatus.OPTED_IN
    [entry] = ledger.history(PHONE)
    assert (entry.source, entry.reference, entry.evidence) == (
        "agent",
        consent.last_request_id,
        "call 4411, recorded consent",
    )
    [record] = consent.audit(consent.last_request_id)
    assert (record["action"], record["outcome"], record["phone_masked"]) == (
        "opt_in_recorded",
        "accepted",
        "***2671",
    )
    assert record["details"] == {
        "source": "agent",
        "requested_at": consent.clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "evidence": "call 4411, recorded consent",
    }
    assert consent.depth() == 0  # an opt-in has nothing to sync


def test_an_opt_in_reads_the_number_with_the_bodys_region(consent):
    status, body = consent.opt_in("020 7946 0018", "web", region="GB")

    assert (status, body["phone"]) == (200, "+442079460018")
    assert consent.ledger().status("+442079460018") is ConsentStatus.OPTED_IN


def test_a_number_in_the_evidence_is_masked_in_the_ledger_and_the_audit(consent):
    consent.opt_in(PHONE, evidence="confirmed by calling back 415-555-2671")
    [entry] = consent.ledger().history(PHONE)
    assert entry.evidence == "confirmed by calling back ***2671"
    assert "555-2671" not in json.dumps(consent.audit(), default=str)


@pytest.mark.parametrize(
    ("evidence", "field"),
    [("", "evidence"), ("x" * 501, "evidence"), (12, "evidence"), ("a\u0007b", "evidence")],
)
def test_bad_evidence_is_422_naming_it(consent, evidence, field):
    status, answer = consent.opt_in(PHONE, evidence=evidence)
    assert status == 422
    assert [problem["field"] for problem in answer["fields"]] == [field]
    assert _nothing_written(consent)


def test_evidence_of_500_characters_is_accepted(consent):
    assert consent.opt_in(PHONE, evidence="x" * 500)[0] == 200


def test_an_opt_in_after_an_opt_out_wins_and_an_older_one_does_not(consent):
    consent.opt_out(PHONE, "ivr")
    consent.clock.advance(seconds=1)
    assert consent.opt_in(PHONE, "web")[1]["consent"] == "opted_in"

    # A container whose clock runs behind records an opt-in timed before the standing opt-out.
    consent.clock.advance(seconds=1)
    consent.opt_out(PHONE, "agent")
    consent.clock.advance(seconds=-5)
    status, body = consent.opt_in(PHONE, "web")

    assert (status, body["consent"]) == (200, "opted_out")
    assert consent.ledger().status(PHONE) is ConsentStatus.OPTED_OUT
    assert consent.audit(consent.last_request_id)[0]["outcome"] == "superseded"
    assert [e.status for e in consent.ledger().history(PHONE)] == [
        ConsentStatus.OPTED_IN,  # the late container's, ordered by its time
        ConsentStatus.OPTED_OUT,
        ConsentStatus.OPTED_IN,
        ConsentStatus.OPTED_OUT,
    ]


# GET /consent/{phone} ------------------------------------------------------------------------


def test_a_number_never_seen_is_unknown(consent):
    assert consent.lookup(PHONE) == (
        200,
        {"phone": "***2671", "status": "unknown", "updated_at": None, "history": [], "dnc": []},
    )


def _ms(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _z(moment: datetime) -> str:
    return _ms(moment).replace("+00:00", "Z")


def test_the_answer_masks_the_number_and_lists_history_and_dnc_environments(consent):
    consent.opt_out(PHONE, "ivr")
    opt_out_id, opted_out_at = consent.last_request_id, consent.clock.now
    consent.clock.advance(seconds=90)
    consent.deliver()
    applied_at = consent.clock.now
    consent.clock.advance(seconds=30)
    consent.opt_in(PHONE, "agent", evidence="consent form 7")
    opt_in_id, opted_in_at = consent.last_request_id, consent.clock.now

    status, body = consent.lookup("(415) 555-2671")

    assert (status, body["phone"], body["status"]) == (200, "***2671", "opted_in")
    assert body["updated_at"] == _ms(opted_in_at)
    assert body["history"] == [
        {
            "status": "opted_out",
            "source": "ivr",
            "occurred_at": _ms(opted_out_at),
            "reference": opt_out_id,
            "evidence": None,
        },
        {
            "status": "opted_in",
            "source": "agent",
            "occurred_at": _ms(opted_in_at),
            "reference": opt_in_id,
            "evidence": "consent form 7",
        },
    ]
    # The opt-in changes the ledger, not CXone: the number stays in both DNC groups.
    assert body["dnc"] == [
        {"environment": "emea", "group_id": "7", "applied_at": _z(applied_at)},
        {"environment": "primary", "group_id": "1", "applied_at": _z(applied_at)},
    ]
    assert "4155552671" not in json.dumps(body)


def test_a_lookup_reads_national_numbers_with_the_region_given(consent):
    consent.opt_out("020 7946 0958", region="GB")
    status, body = consent.lookup("020 7946 0958", {"region": "GB"})
    assert (status, body["phone"], body["status"]) == (200, "***0958", "opted_out")


@pytest.mark.parametrize(
    ("phone", "query", "field"),
    [("12", None, "phone"), ("+1 099 555 2671", None, "phone"), (PHONE, {"region": "ZZ"}, "region")],
)
def test_a_lookup_of_an_invalid_number_is_422_naming_the_field(consent, phone, query, field):
    status, body = consent.lookup(phone, query)
    assert status == 422
    assert [problem["field"] for problem in body["fields"]] == [field]


def test_a_lookup_with_a_malformed_region_is_422(consent):
    status, body = consent.lookup(PHONE, {"region": "G1"})
    assert status == 422 and body["error"] == "validation_failed"


def test_a_path_no_number_can_match_is_404(consent):
    event = api_gateway_event("GET", "/consent/☎", None, {}, resource="/consent/{phone}")
    response = consent.api.lambda_handler(event, LocalLambdaContext("consent-api", 10))
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"] == "not_found"


# Metrics -------------------------------------------------------------------------------------


def test_the_api_counts_requests_by_action_and_source_and_rejections_by_reason(
    consent, capsys, captured_logs
):
    consent.opt_out(PHONE, "ivr")
    consent.opt_in(PHONE, "web")
    consent.opt_out("12", "web")
    consent.post("/opt-out", "{")

    emitted = emf_metrics(capsys.readouterr().out)
    requests = sorted((dims["action"], dims["source"]) for name, dims in emitted if name == "ConsentRequests")
    assert requests == [("opt_in", "web"), ("opt_out", "ivr")]
    reasons = sorted(dims["reason"] for name, dims in emitted if name == "ConsentRequestsRejected")
    assert reasons == ["invalid_fields", "malformed_json"]
    logged = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    rejected = [line["reason"] for line in logged if line["message"] == "consent request rejected"]
    assert rejected == ["invalid_fields", "malformed_json"]


@pytest.mark.parametrize(
    ("microseconds", "milliseconds"), [(123_456, "123"), (500_000, "500"), (999_999, "999")]
)
def test_request_and_queued_times_share_the_millisecond_the_ledger_keys_changes_by(
    consent, microseconds, milliseconds
):
    consent.clock.advance(microseconds=microseconds)
    consent.opt_out(PHONE, "ivr")

    [queued] = consent.queued()
    assert queued["requested_at"] == consent.clock.now.strftime(f"%Y-%m-%dT%H:%M:%S.{milliseconds}Z")
    consent.deliver()  # the consumer records the queued copy: the same change, no second entry
    [entry] = consent.ledger().history(PHONE)
    assert entry.occurred_at == consent.clock.now.strftime(f"%Y-%m-%dT%H:%M:%S.{milliseconds}+00:00")


def test_times_are_written_in_utc_whatever_the_machines_zone(consent, local_time_not_utc):
    consent.opt_out(PHONE, "ivr")

    [queued] = consent.queued()
    assert queued["requested_at"] == consent.clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize(("path", "status"), [("/opt-out", 202), ("/opt-in", 200)])
def test_a_request_without_an_api_gateway_request_id_gets_a_reference_of_its_own(consent, path, status):
    body = json.dumps({"phone": PHONE, "source": "api"})
    event = api_gateway_event("POST", path, body, {}, resource=path)
    del event["requestContext"]["requestId"]
    response = consent.api.lambda_handler(event, LocalLambdaContext("consent-api", 10))

    assert response["statusCode"] == status
    [entry] = consent.ledger().history(PHONE)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", entry.reference)
    assert [record["subject"] for record in consent.audit()] == [entry.reference]
    queued = [message["reference"] for message in consent.queued()]
    assert queued == ([entry.reference] if path == "/opt-out" else [])
