"""The DTMF processor with its clock and the CXone transport's sleeper injected, against the CXone
simulator and moto: deadlines to the millisecond, 5xx retries without sleeping, latency exact."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest

from cxone_relay.platform.cxone.client import CxoneClient, CxoneGateway
from cxone_relay.platform.cxone.models import DtmfResult
from cxone_relay.platform.data.audit import AuditTrail
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.errors import PermanentUpstreamError, UnauthorizedError
from cxone_relay.platform.observability import metrics
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.platform.transport import RetryingHttp, TimeBudget
from cxone_relay.workflows.dtmf.intake import WORKFLOW
from cxone_relay.workflows.dtmf.models import DtmfOutcome, QueuedDtmf
from cxone_relay.workflows.dtmf.processor import DtmfProcessor, audit_payload, audit_subject
from cxone_relay.workflows.dtmf.webhook import WebhookOutbox
from local.builders import audit_records, emf_metrics
from tests.conftest import cxone_settings, sim_credentials
from tests.integration.dtmf_harness import decision, logged

ACCEPTED = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC).timestamp()
SEND_PATH = "/inContactAPI/services/v23.0/agent-sessions/"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self, stack, cxone_sim) -> None:
        self.sleeps: list[float] = []
        self.clock = Clock(ACCEPTED)
        self.dynamodb = boto3.client("dynamodb")
        self.table = stack.tables["AuditTable"]
        self.audit = AuditTrail(DynamoTable(self.dynamodb, self.table), PhoneHasher("test-key"), 400)
        gateway = CxoneGateway(
            cxone_settings(cxone_sim.url),
            ssm_client=boto3.client("ssm"),
            dynamodb_client=self.dynamodb,
            credentials=sim_credentials,
            http=RetryingHttp("cxone", sleeper=self.sleeps.append, rng=lambda: 0.5),
        )
        self.cxone: CxoneClient = gateway.client()
        self.processor = DtmfProcessor(
            self.cxone, self.audit, WebhookOutbox(None, self.audit, 5.0), clock=self.clock
        )

    def process(self, message: QueuedDtmf) -> DtmfOutcome:
        """As the SQS consumer runs it: the request's stage record is written however it ends."""
        stage = self.audit.stage(WORKFLOW, audit_subject(message))
        try:
            return self.processor.process(message, stage, TimeBudget.fixed(30))
        finally:
            self.audit.record_stages([stage])

    def final(self, subject: str = "dtmf-1") -> dict:
        [record] = [
            r
            for r in audit_records(self.dynamodb, self.table, subject=subject)
            if r["action"] in {"dtmf_sent", "dtmf_not_sent"}
        ]
        return record


@pytest.fixture
def setup(stack, cxone_sim) -> Setup:
    cxone_sim.add_agent_sessions(["session-1"])
    return Setup(stack, cxone_sim)


def payload(**fields) -> dict:
    """The audit payload of `message()` as the audit table holds it, settled at the clock's time."""
    return {
        "request_id": "dtmf-1",
        "interaction_id": "session-1",
        "digits": "42#",
        "timeout_ms": 2000,
        "sequence_matrix_key": "main-menu",
        "node_transition_flag": False,
        "tone_duration_ms": 90,
        "tone_spacing_ms": 60,
        "latency_ms": None,
        "cxone_status": None,
        "cxone_response": {},
        "validation_result": "valid",
    } | fields


def message(**fields) -> QueuedDtmf:
    return QueuedDtmf.model_validate(
        {
            "id": "dtmf-1",
            "interaction_id": "session-1",
            "digits": "42#",
            "timeout_ms": 2000,
            "sequence_matrix_key": "main-menu",
            "node_transition_flag": False,
            "tone_duration_ms": 90,
            "tone_spacing_ms": 60,
            "accepted_at": datetime.fromtimestamp(ACCEPTED, UTC).isoformat(),
            "correlation_id": "corr-1",
        }
        | fields
    )


def test_latency_is_measured_from_accept_to_cxones_answer(setup, cxone_sim, capsys, captured_logs):
    # 257.8125 ms (exact in binary): the audit keeps it to a tenth, the outcome and log as measured.
    setup.clock.now = ACCEPTED + 0.2578125

    outcome = setup.process(message())

    assert outcome == DtmfOutcome(id="dtmf-1", status="sent", cxone_status=202, latency_ms=257.8125)
    assert cxone_sim.state()["dtmf"] == [
        {"sessionId": "session-1", "dtmfSequence": "42#", "toneDurationMS": 90, "toneSpacingMS": 60}
    ]
    assert decision(setup.final()) == {
        "subject": "dtmf-1",
        "action": "dtmf_sent",
        "outcome": "ok",
        "reason": None,
        "details": payload(
            timestamp="2026-11-24T12:00:00.257Z",
            latency_ms=Decimal("257.8"),
            cxone_status=202,
            outcome="sent",
        ),
        "correlation_id": "corr-1",
    }
    metrics.flush_metrics()
    output = capsys.readouterr().out
    emitted = emf_metrics(output)
    assert [name for name, _ in emitted if name.startswith("Dtmf")] == ["DtmfSent", "DtmfLatency"]
    # The latency metric is in milliseconds, as the dashboard's widget reads it.
    [document] = [json.loads(line) for line in output.splitlines() if '"DtmfLatency"' in line]
    [[unit]] = [
        [m["Unit"] for m in d["Metrics"] if m["Name"] == "DtmfLatency"]
        for d in document["_aws"]["CloudWatchMetrics"]
    ]
    assert (unit, document["DtmfLatency"]) == ("Milliseconds", [257.8125])
    # How many digits, never which (digits can be a card or account number).
    assert logged(captured_logs.getvalue(), "dtmf request done") == [
        {
            "level": "INFO",
            "message": "dtmf request done",
            "request_id": "dtmf-1",
            "interaction_id": "session-1",
            "outcome": "sent",
            "cxone_status": 202,
            "latency_ms": 257.8125,
            "digit_count": 3,
        }
    ]


@pytest.mark.parametrize(
    ("after_accept", "reason"),
    [
        (1.5, None),
        (1.79, None),  # 0.21 s left: an attempt whose window (half of it) is over 0.1 s still fits
        (1.81, "gave up after no attempt made"),  # the token fetch or the send: no time
        (2.0, "its timeout passed before it could be sent"),
        (2.001, "its timeout passed before it could be sent"),
        (60, "its timeout passed before it could be sent"),
    ],
)
def test_a_request_is_sent_only_while_it_has_time_left(setup, cxone_sim, after_accept, reason):
    setup.clock.now = ACCEPTED + after_accept

    outcome = setup.process(message(timeout_ms=2000))

    sent = reason is None
    assert outcome.status == ("sent" if sent else "expired")
    assert len(cxone_sim.requests(path_prefix=SEND_PATH)) == (1 if sent else 0)
    if not sent:
        record = setup.final()
        assert (record["action"], record["outcome"]) == ("dtmf_not_sent", "expired")
        assert record["reason"].endswith(reason)
        assert (record["details"]["latency_ms"], record["details"]["cxone_status"]) == (None, None)


def test_a_5xx_is_retried_within_the_request_and_sent_once(setup, cxone_sim):
    cxone_sim.add_fault(status=503, count=1, path_prefix=SEND_PATH)
    cxone_sim.add_fault(status=502, count=1, path_prefix=SEND_PATH)

    outcome = setup.process(message())

    assert outcome.status == "sent"
    assert [r["status"] for r in cxone_sim.requests(path_prefix=SEND_PATH)] == [503, 502, 202]
    assert setup.sleeps == [0.125, 0.25]  # full jitter (rng 0.5) of 0.25 s, then 0.5 s: never slept
    assert len(cxone_sim.state()["dtmf"]) == 1


def test_retries_stop_at_the_requests_deadline_not_the_invocations(setup, cxone_sim):
    # 0.3 s left: one attempt fits (its window is half of it); a backoff and another would not.
    setup.clock.now = ACCEPTED + 1.7
    cxone_sim.add_fault(status=503, path_prefix=SEND_PATH)

    outcome = setup.process(message(timeout_ms=2000))

    assert outcome == DtmfOutcome(id="dtmf-1", status="expired", cxone_status=503, latency_ms=None)
    assert len(cxone_sim.requests(path_prefix=SEND_PATH)) == 1 and setup.sleeps == []
    # A 5xx carries no error list of CXone's, and the record says so rather than leaving it out.
    assert decision(setup.final()) == {
        "subject": "dtmf-1",
        "action": "dtmf_not_sent",
        "outcome": "expired",
        "reason": f"cxone: POST {SEND_PATH}session-1/send-dtmf gave up after HTTP 503 (HTTP 503)",
        "details": payload(
            timestamp="2026-11-24T12:00:01.700Z",
            cxone_status=503,
            cxone_response={"errors": []},
            outcome="expired",
        ),
        "correlation_id": "corr-1",
    }


def test_a_refusal_is_audited_and_raised_for_the_dead_letter_queue(setup, cxone_sim, captured_logs):
    cxone_sim.add_fault(status=422, path_prefix=SEND_PATH)

    with pytest.raises(PermanentUpstreamError):
        setup.process(message())

    assert decision(setup.final()) == {
        "subject": "dtmf-1",
        "action": "dtmf_not_sent",
        "outcome": "refused",
        "reason": f"cxone: POST {SEND_PATH}session-1/send-dtmf refused (HTTP 422)",
        "details": payload(
            timestamp="2026-11-24T12:00:00.000Z",
            cxone_status=422,
            # CXone's error list, by field and code only (its message may echo what was sent).
            cxone_response={"errors": [{"field": None, "errorCode": "UnprocessableEntity"}]},
            outcome="refused",
        ),
        "correlation_id": "corr-1",
    }
    # A request that was not sent is a warning, with no latency (nothing was played; the logger
    # leaves out fields that are None).
    assert logged(captured_logs.getvalue(), "dtmf request done") == [
        {
            "level": "WARNING",
            "message": "dtmf request done",
            "request_id": "dtmf-1",
            "interaction_id": "session-1",
            "outcome": "refused",
            "cxone_status": 422,
            "digit_count": 3,
        }
    ]


def test_credentials_cxone_refuses_come_back_rather_than_end_the_request(setup, cxone_sim, monkeypatch):
    def refused(*args, **kwargs):
        raise UnauthorizedError("cxone", "access token refused", status=401)

    monkeypatch.setattr(CxoneClient, "send_dtmf", refused)

    with pytest.raises(UnauthorizedError):
        setup.process(message())

    [record] = audit_records(setup.dynamodb, setup.table, subject="dtmf-1")
    assert decision(record) == {
        "subject": "dtmf-1",
        "action": "cxone_failed",
        "outcome": "retry",
        "reason": "cxone: access token refused (HTTP 401)",
        "details": {"cxone_status": 401},
        "correlation_id": "corr-1",
    }


def test_a_body_cxone_answers_a_send_with_is_kept_in_the_audit(setup, monkeypatch):
    # The Agent API's answer is usually empty (the simulator's is); when it says something, the
    # audit keeps it beside the status.
    def answered(*args, **kwargs):
        return DtmfResult(status=200, response={"sessionId": "session-1", "queued": True})

    monkeypatch.setattr(CxoneClient, "send_dtmf", answered)

    assert setup.process(message()).status == "sent"

    details = setup.final()["details"]
    assert (details["cxone_status"], details["cxone_response"]) == (
        200,
        {"sessionId": "session-1", "queued": True},
    )


def test_an_unexpected_failure_is_audited_and_raised(setup, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(CxoneClient, "send_dtmf", broken)

    with pytest.raises(RuntimeError):
        setup.process(message())

    [record] = audit_records(setup.dynamodb, setup.table, subject="dtmf-1")
    assert (record["action"], record["outcome"], record["reason"]) == (
        "processing_failed",
        "retry",
        "RuntimeError: a bug",
    )


def cxone_response_kept(response: dict) -> dict:
    """What the audit payload keeps of this answer of CXone's."""
    return audit_payload(
        message(), outcome="refused", now=ACCEPTED, cxone_status=400, cxone_response=response, latency=None
    )["cxone_response"]


def test_cxones_errors_are_kept_by_field_and_code_only_and_at_most_five():
    errors = [
        {"field": f"field{i}", "errorCode": f"Code{i}", "message": f"value {i} is wrong"} for i in range(7)
    ]

    # The message is left out (it may echo what was sent), and so are errors past the fifth.
    assert cxone_response_kept({"errors": errors}) == {
        "errors": [{"field": f"field{i}", "errorCode": f"Code{i}"} for i in range(5)]
    }


@pytest.mark.parametrize(("size", "kept"), [(2048, True), (2049, False)])
def test_an_answer_longer_than_2048_characters_is_omitted(size, kept):
    response = {"note": "x" * (size - len(json.dumps({"note": ""})))}
    assert len(json.dumps(response)) == size

    assert cxone_response_kept(response) == (response if kept else {"omitted": "larger than 2048 characters"})
