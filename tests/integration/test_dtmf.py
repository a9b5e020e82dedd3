"""DTMF through its handlers: the API function and the SQS consumer, on moto built from
template.yaml, the CXone simulator (send-dtmf, 404 for unknown sessions) and the ticketing
simulator as the audit webhook."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cxone_relay.platform.data.audit import AuditTrail
from local.builders import dtmf_request, emf_metrics
from local.runtime import free_ports
from tests.dashboard import assert_matches_dashboard
from tests.integration.dtmf_harness import SEND_DTMF_PREFIX, DtmfHarness, decision, logged

SEED_PAYLOAD_FIELDS = {
    "request_id",
    "timestamp",
    "interaction_id",
    "digits",
    "timeout_ms",
    "sequence_matrix_key",
    "node_transition_flag",
    "tone_duration_ms",
    "tone_spacing_ms",
    "latency_ms",
    "cxone_status",
    "cxone_response",
    "validation_result",
    "outcome",
}


@pytest.fixture
def dtmf(stack, cxone_sim, ticketing_sim, monkeypatch) -> DtmfHarness:
    cxone_sim.add_agent_sessions(["session-1", "session-2"])
    return DtmfHarness(stack, cxone_sim, ticketing_sim, monkeypatch)


def accepted_id(dtmf: DtmfHarness, body: dict) -> str:
    status, answer = dtmf.post(body)
    assert (status, answer["status"]) == (202, "queued"), answer
    return str(answer["id"])


def final_record(dtmf: DtmfHarness, request_id: str) -> dict:
    [record] = [r for r in dtmf.audit(request_id) if r["action"] in {"dtmf_sent", "dtmf_not_sent"}]
    return record


def old_request(**fields) -> dict:
    """A queued request as the API function wrote it, accepted `age` seconds ago."""
    age = fields.pop("age", 10)
    accepted_at = datetime.now(UTC) - timedelta(seconds=age)
    return {
        "id": fields.pop("id", "dtmf-old"),
        "interaction_id": "session-1",
        "digits": "5#",
        "timeout_ms": 1000,
        "sequence_matrix_key": "main-menu",
        "node_transition_flag": False,
        "tone_duration_ms": 100,
        "tone_spacing_ms": 50,
        "accepted_at": accepted_at.isoformat(),
    } | fields


# The way through ------------------------------------------------------------------------------


def test_an_accepted_request_is_sent_audited_and_posted_to_the_webhook(dtmf):
    request_id = accepted_id(dtmf, dtmf_request("session-1", "12*#", timeout_ms=4000))
    api_request_id = dtmf.last_api_request_id
    [queued] = dtmf.queued()
    assert (queued["id"], queued["tone_duration_ms"], queued["tone_spacing_ms"]) == (request_id, 100, 50)

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert dtmf.played() == [
        {"sessionId": "session-1", "dtmfSequence": "12*#", "toneDurationMS": 100, "toneSpacingMS": 50}
    ]
    [send] = dtmf.sends()
    assert send["headers"]["idempotency-key"] == f"{request_id}:send-dtmf"
    assert dtmf.audit_actions(request_id) == [
        ("queued", "accepted"),
        ("dtmf_sent", "ok"),
        ("audit_webhook_delivered", "ok"),
    ]
    payload = final_record(dtmf, request_id)["details"]
    assert set(payload) == SEED_PAYLOAD_FIELDS
    assert {k: payload[k] for k in SEED_PAYLOAD_FIELDS - {"timestamp", "latency_ms"}} == {
        "request_id": request_id,
        "interaction_id": "session-1",
        "digits": "12*#",
        "timeout_ms": 4000,
        "sequence_matrix_key": "main-menu",
        "node_transition_flag": True,
        "tone_duration_ms": 100,
        "tone_spacing_ms": 50,
        "cxone_status": 202,
        "cxone_response": {},
        "validation_result": "valid",
        "outcome": "sent",
    }
    assert 0 <= payload["latency_ms"] < 4000
    [hook] = dtmf.hooks()
    assert hook["body"] == json.loads(json.dumps(payload, default=float))
    assert hook["headers"]["idempotency-key"] == request_id
    # The delivery is audited with the receiver's answer, under the request's correlation id.
    [delivered] = [r for r in dtmf.audit(request_id) if r["action"] == "audit_webhook_delivered"]
    assert decision(delivered) == {
        "subject": request_id,
        "action": "audit_webhook_delivered",
        "outcome": "ok",
        "reason": None,
        "details": {"status": 204},
        "correlation_id": api_request_id,
    }
    assert dtmf.depth() == 0


def test_the_queued_request_and_its_audit_record_carry_the_api_request_id(
    dtmf, captured_logs, local_time_not_utc
):
    request_id = accepted_id(dtmf, dtmf_request("session-1", "12*#", timeout_ms=4000))
    api_request_id = dtmf.last_api_request_id

    [message] = dtmf.sqs.receive_message(
        QueueUrl=dtmf.queue_url, MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    body = json.loads(message["Body"])
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == api_request_id
    assert (body["id"], body["correlation_id"]) == (request_id, api_request_id)
    # The queue holds JSON as the consumer's model reads it: an ISO 8601 time, in UTC.
    accepted_at = datetime.fromisoformat(body["accepted_at"])
    assert "T" in body["accepted_at"] and accepted_at.utcoffset() == timedelta(0)
    assert abs(accepted_at - datetime.now(UTC)) < timedelta(minutes=5)
    [queued] = [record for record in dtmf.audit(request_id) if record["action"] == "queued"]
    assert queued["correlation_id"] == api_request_id
    assert queued["details"] == {
        "validation_result": "valid",
        "interaction_id": "session-1",
        "sequence_matrix_key": "main-menu",
        "digit_count": 4,
        "timeout_ms": 4000,
    }
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    [line] = [line for line in lines if line["message"] == "dtmf request queued"]
    assert (line["request_id"], line["interaction_id"]) == (request_id, "session-1")


def test_tones_given_in_the_request_are_sent_as_given(dtmf):
    accepted_id(dtmf, dtmf_request("session-2", "9", tone_duration_ms=40, tone_spacing_ms=1000))
    dtmf.deliver()
    assert dtmf.played() == [
        {"sessionId": "session-2", "dtmfSequence": "9", "toneDurationMS": 40, "toneSpacingMS": 1000}
    ]


def test_a_redelivered_request_is_sent_once(dtmf):
    request_id = accepted_id(dtmf, dtmf_request())
    [queued] = dtmf.queued()
    dtmf.enqueue(queued)  # SQS at-least-once: the same request twice (one batch),
    results = [dtmf.deliver()]
    dtmf.enqueue(queued)  # and again after it was sent

    results += dtmf.drain()

    assert sum(r.succeeded for r in results) == 3 and sum(r.failed for r in results) == 0
    assert len(dtmf.sends()) == 1 and len(dtmf.played()) == 1
    assert [a for a, _ in dtmf.audit_actions(request_id)].count("dtmf_sent") == 1
    assert len(dtmf.hooks()) == 1


def test_each_request_is_its_own_even_with_the_same_body(dtmf):
    first = accepted_id(dtmf, dtmf_request())
    second = accepted_id(dtmf, dtmf_request())
    dtmf.drain()
    assert first != second
    assert len(dtmf.played()) == 2


# Failures -------------------------------------------------------------------------------------


def test_an_ended_session_is_tried_once_and_final(dtmf):
    request_id = accepted_id(dtmf, dtmf_request("session-gone"))
    [queued] = dtmf.queued()

    result = dtmf.deliver()
    dtmf.enqueue(queued)  # a redelivery finds it done
    dtmf.drain()

    assert (result.succeeded, result.failed) == (1, 0)
    assert [r["status"] for r in dtmf.sends()] == [404]
    assert dtmf.played() == [] and dtmf.dead_letters() == []
    record = final_record(dtmf, request_id)
    assert (record["outcome"], record["details"]["cxone_status"]) == ("session_ended", 404)
    assert record["reason"] == "CXone does not know the agent session: the call has ended"
    assert record["details"]["cxone_response"] == {
        "errors": [{"field": None, "errorCode": "SessionNotFound"}]
    }
    [hook] = dtmf.hooks()
    assert hook["body"]["outcome"] == "session_ended"


def test_a_429_is_retried_with_the_same_idempotency_key_and_sent_once(dtmf):
    request_id = accepted_id(dtmf, dtmf_request())
    dtmf.cxone.add_fault(status=429, retry_after=0, count=2, path_prefix=SEND_DTMF_PREFIX)

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    sends = dtmf.sends()
    assert [r["status"] for r in sends] == [429, 429, 202]
    assert {r["headers"]["idempotency-key"] for r in sends} == {f"{request_id}:send-dtmf"}
    assert len(dtmf.played()) == 1
    assert final_record(dtmf, request_id)["outcome"] == "ok"


def test_throttling_that_outlasts_every_retry_is_final_and_never_dead_lettered(dtmf):
    request_id = accepted_id(dtmf, dtmf_request())
    dtmf.cxone.add_fault(status=429, retry_after=0, path_prefix=SEND_DTMF_PREFIX)

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert [r["status"] for r in dtmf.sends()] == [429] * 5  # every attempt the policy allows
    record = final_record(dtmf, request_id)
    assert (record["outcome"], record["details"]["cxone_status"]) == ("expired", 429)
    assert "HTTP 429" in record["reason"]
    assert dtmf.played() == [] and dtmf.dead_letters() == [] and dtmf.depth() == 0


def test_a_request_cxone_refuses_is_tried_once_audited_and_dead_lettered(dtmf):
    request_id = accepted_id(dtmf, dtmf_request("session-1", "77"))
    good = accepted_id(dtmf, dtmf_request("session-2", "88"))
    dtmf.cxone.add_fault(status=400, body_contains='"77"', path_prefix=SEND_DTMF_PREFIX)

    result = dtmf.deliver()

    assert (result.received, result.succeeded, result.failed) == (2, 2, 0)
    assert len([r for r in dtmf.sends() if r["body"]["dtmfSequence"] == "77"]) == 1
    [(body, attributes)] = dtmf.dead_letters()
    assert json.loads(body)["id"] == request_id
    assert attributes["failure_class"] == "PermanentUpstreamError"
    assert "HTTP 400" in attributes["failure_reason"] and attributes["workflow"] == "dtmf"
    actions = dtmf.audit_actions(request_id)
    assert ("dtmf_not_sent", "refused") in actions and ("dead_lettered", "permanent_failure") in actions
    assert {hook["body"]["outcome"] for hook in dtmf.hooks()} == {"refused", "sent"}
    assert final_record(dtmf, good)["outcome"] == "ok"


def test_a_request_past_its_timeout_is_never_sent(dtmf):
    dtmf.enqueue(old_request(id="dtmf-late", age=2, timeout_ms=1000))
    dtmf.enqueue(old_request(id="dtmf-in-time", age=2, timeout_ms=30000))

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (2, 0)
    assert [r["body"]["dtmfSequence"] for r in dtmf.sends()] == ["5#"]
    late = final_record(dtmf, "dtmf-late")
    assert (late["outcome"], late["details"]["cxone_status"]) == ("expired", None)
    assert final_record(dtmf, "dtmf-in-time")["outcome"] == "ok"


def test_a_queue_record_that_is_not_a_request_is_dead_lettered_alone(dtmf):
    accepted_id(dtmf, dtmf_request())
    dtmf.sqs.send_message(QueueUrl=dtmf.queue_url, MessageBody=json.dumps({"id": "x", "digits": "12"}))

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (2, 0)
    [(_, attributes)] = dtmf.dead_letters()
    assert attributes["failure_class"] == "ValidationError"
    assert len(dtmf.played()) == 1


# The audit webhook ----------------------------------------------------------------------------


def test_an_unreachable_webhook_does_not_affect_the_sends(dtmf, captured_logs):
    [closed] = free_ports(1)
    dtmf.start_consumer_without_sleeping(DTMF_AUDIT_WEBHOOK_URL=f"http://127.0.0.1:{closed}/hooks/dtmf-audit")
    requests = []
    for session, digits in [("session-1", "1"), ("session-2", "2"), ("session-1", "3")]:
        requests.append((accepted_id(dtmf, dtmf_request(session, digits)), dtmf.last_api_request_id))

    result = dtmf.deliver()

    assert (result.received, result.succeeded, result.failed) == (3, 3, 0)
    assert [p["dtmfSequence"] for p in dtmf.played()] == ["1", "2", "3"]
    # The first payload was tried (and retried); the webhook being down, the others were not,
    # and each of them is audited and logged as not delivered, not only the one after the first.
    assert len(dtmf.webhook_sleeps) == 2
    down = "audit-webhook: POST /hooks/dtmf-audit gave up after ConnectionError"
    reasons = [
        down,
        f"not tried: the webhook failed earlier ({down})",
        f"not tried: the webhook failed earlier ({down})",
    ]
    failed = [
        decision(record)
        for request_id, _ in requests
        for record in dtmf.audit(request_id)
        if record["action"] == "audit_webhook_failed"
    ]
    assert failed == [
        {
            "subject": request_id,
            "action": "audit_webhook_failed",
            "outcome": "failed",
            "reason": reason,
            "details": None,
            "correlation_id": correlation_id,
        }
        for (request_id, correlation_id), reason in zip(requests, reasons, strict=True)
    ]
    assert logged(captured_logs.getvalue(), "dtmf audit webhook not delivered") == [
        {
            "level": "WARNING",
            "message": "dtmf audit webhook not delivered",
            "request_id": request_id,
            "reason": reason,
        }
        for (request_id, _), reason in zip(requests, reasons, strict=True)
    ]
    assert {final_record(dtmf, request_id)["outcome"] for request_id, _ in requests} == {"ok"}


def test_a_failing_webhook_is_retried_then_audited_on_its_own(dtmf):
    dtmf.start_consumer_without_sleeping()
    request_id = accepted_id(dtmf, dtmf_request())
    dtmf.ticketing.add_fault(status=503, path_prefix="/hooks/")

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert len(dtmf.ticketing.requests(path_prefix="/hooks/")) == 3  # DTMF_AUDIT_WEBHOOK_MAX_ATTEMPTS
    assert len(dtmf.played()) == 1
    [failed] = [r for r in dtmf.audit(request_id) if r["action"] == "audit_webhook_failed"]
    assert failed["reason"] == "audit-webhook: POST /hooks/dtmf-audit gave up after HTTP 503 (HTTP 503)"


def test_a_webhook_blip_is_retried_and_delivered(dtmf):
    dtmf.start_consumer_without_sleeping()
    request_id = accepted_id(dtmf, dtmf_request())
    dtmf.ticketing.add_fault(status=502, count=1, path_prefix="/hooks/")

    dtmf.deliver()

    assert len(dtmf.hooks()) == 1 and len(dtmf.webhook_sleeps) == 1
    assert dtmf.audit_actions(request_id)[-1] == ("audit_webhook_delivered", "ok")


def test_a_webhook_result_that_cannot_be_audited_is_logged_and_the_batch_still_succeeds(
    dtmf, monkeypatch, captured_logs
):
    def broken(self, events):
        raise RuntimeError("DynamoDB is having a bad day")

    # Only the webhook's results are written with record_many; the sends' records still land.
    monkeypatch.setattr(AuditTrail, "record_many", broken)
    request_id = accepted_id(dtmf, dtmf_request())

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert len(dtmf.hooks()) == 1
    assert [a for a, _ in dtmf.audit_actions(request_id)] == ["queued", "dtmf_sent"]
    [line] = logged(captured_logs.getvalue(), "could not audit the dtmf audit webhook's results")
    # The traceback is there, whatever its exact shape.
    assert line.pop("exception").endswith("RuntimeError: DynamoDB is having a bad day")
    assert line.pop("stack_trace")["frames"][-1]["function"] == "broken"
    assert line == {
        "level": "ERROR",
        "message": "could not audit the dtmf audit webhook's results",
        "exception_name": "RuntimeError",
    }


def test_the_webhook_keeps_a_one_second_reserve_of_the_invocation_not_the_consumers_three(dtmf):
    # 2.15 s left: too little for a send (the SQS consumer keeps 3 s to report the batch), but
    # the webhook, run after the batch, keeps only 1 s, so its attempt gets 1.15 s (a window of
    # half that): the expired request's payload is still delivered.
    dtmf.remaining_ms = 2150
    request_id = accepted_id(dtmf, dtmf_request())

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert dtmf.cxone.requests() == []
    record = final_record(dtmf, request_id)
    # A new container's first CXone call (token endpoint discovery) is not even tried.
    assert (record["outcome"], record["reason"]) == (
        "expired",
        "cxone: GET /.well-known/openid-configuration gave up after no attempt made",
    )
    [hook] = dtmf.hooks()
    assert hook["body"]["outcome"] == "expired"
    assert dtmf.audit_actions(request_id)[-1] == ("audit_webhook_delivered", "ok")


def test_the_webhook_is_not_tried_once_the_invocation_is_out_of_time(dtmf):
    # 1 s left is all reserve: the webhook is given up without an attempt, and audited so.
    dtmf.remaining_ms = 1000
    request_id = accepted_id(dtmf, dtmf_request())

    result = dtmf.deliver()

    assert (result.succeeded, result.failed) == (1, 0)
    assert dtmf.ticketing.requests(path_prefix="/hooks/") == []
    [failed] = [r for r in dtmf.audit(request_id) if r["action"] == "audit_webhook_failed"]
    assert failed["reason"] == "audit-webhook: POST /hooks/dtmf-audit gave up after no attempt made"


def test_without_a_webhook_the_payload_goes_to_the_audit_table_only(dtmf):
    dtmf.start_consumer(DTMF_AUDIT_WEBHOOK_URL="")
    request_id = accepted_id(dtmf, dtmf_request())

    dtmf.deliver()

    assert dtmf.ticketing.requests() == []
    assert [a for a, _ in dtmf.audit_actions(request_id)] == ["queued", "dtmf_sent"]


# Privacy --------------------------------------------------------------------------------------


def test_digits_never_reach_the_logs_and_number_like_digits_are_masked_in_the_audit(dtmf, captured_logs):
    request_id = accepted_id(dtmf, dtmf_request("session-1", "4155552671#"))
    dtmf.deliver()

    assert len(dtmf.played()) == 1 and dtmf.played()[0]["dtmfSequence"] == "4155552671#"
    assert final_record(dtmf, request_id)["details"]["digits"] == "***2671#"
    [hook] = dtmf.hooks()
    assert hook["body"]["digits"] == "***2671#"
    logs = captured_logs.getvalue()
    assert request_id in logs and "4155552671" not in logs and "2671#" not in logs


# Metrics --------------------------------------------------------------------------------------


def test_the_workflow_emits_its_metrics_as_the_dashboard_reads_them(dtmf, capsys):
    # Every path that emits: sent, not sent (ended, refused), invalid, webhook failure.
    accepted_id(dtmf, dtmf_request("session-1"))
    accepted_id(dtmf, dtmf_request("session-gone"))
    accepted_id(dtmf, dtmf_request("session-2", "99"))
    assert dtmf.post(dtmf_request(digits="12a"))[0] == 422
    assert dtmf.post("{")[0] == 400
    dtmf.cxone.add_fault(status=400, body_contains='"99"', path_prefix=SEND_DTMF_PREFIX)
    dtmf.ticketing.add_fault(status=429, retry_after=0, path_prefix="/hooks/")
    dtmf.deliver()

    emitted = emf_metrics(capsys.readouterr().out)
    assert_matches_dashboard(emitted)
    counts = [
        (name, {k: v for k, v in dims.items() if k not in {"service", "stack"}}) for name, dims in emitted
    ]
    assert counts.count(("DtmfSubmitted", {})) == 5
    assert counts.count(("DtmfSent", {})) == 1
    assert counts.count(("DtmfLatency", {})) == 1
    assert ("DtmfValidationFailed", {"reason": "invalid_fields"}) in counts
    assert ("DtmfValidationFailed", {"reason": "malformed_json"}) in counts
    assert {dims["reason"] for name, dims in counts if name == "DtmfFailed"} == {"session_ended", "refused"}
    assert ("DtmfAuditWebhookFailed", {}) in counts


# The API answers ------------------------------------------------------------------------------


def test_an_audit_failure_after_queueing_still_answers_202(dtmf, monkeypatch, captured_logs):
    def broken(self, event):
        raise RuntimeError("DynamoDB is having a bad day")

    monkeypatch.setattr(AuditTrail, "record", broken)

    status, answer = dtmf.post(dtmf_request())
    assert status == 202
    assert dtmf.depth() == 1
    assert dtmf.post(dtmf_request(digits=""))[0] == 422
    refused_request_id = dtmf.last_api_request_id
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    failures = [line for line in lines if line["message"] == "could not audit a dtmf request"]
    assert [(line["level"], line["subject"], line["action"]) for line in failures] == [
        ("ERROR", answer["id"], "queued"),
        ("ERROR", refused_request_id, "rejected"),
    ]
