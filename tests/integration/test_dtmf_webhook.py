"""The DTMF audit webhook's outbox on its own, with its monotonic clock and the transport's sleeper
and random source injected, against the ticketing simulator (as the receiver) and moto: the batch
allowance is exact and no retry sleeps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests

from cxone_relay.platform.data.audit import AuditTrail
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.platform.transport import RetryingHttp, RetryPolicy, TimeBudget
from cxone_relay.workflows.dtmf.models import QueuedDtmf
from cxone_relay.workflows.dtmf.webhook import AuditWebhook, WebhookOutbox
from local.builders import audit_records
from local.runtime import DTMF_AUDIT_HOOK_PATH
from tests.integration.dtmf_harness import decision, logged

HOOK_URL_PATH = DTMF_AUDIT_HOOK_PATH


class Clock:
    """A monotonic clock that moves only when the transport waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Setup:
    def __init__(self, stack, url: str, session: requests.Session | None = None) -> None:
        self.clock = Clock()
        self.dynamodb = boto3.client("dynamodb")
        self.table = stack.tables["AuditTable"]
        audit = AuditTrail(DynamoTable(self.dynamodb, self.table), PhoneHasher("test-key"), 400)
        # The consumer's webhook policy (3 attempts, 2 s timeout); backoff at its full step
        # (rng 1.0): waits of 0.2 s, then 0.4 s.
        http = RetryingHttp(
            "audit-webhook",
            session=session,
            policy=RetryPolicy.for_webhook(3, 2.0),
            sleeper=self.clock.sleep,
            rng=lambda: 1.0,
        )
        self.webhook = AuditWebhook(url, http)
        self.audit = audit

    def outbox(self, batch_seconds: float) -> WebhookOutbox:
        return WebhookOutbox(self.webhook, self.audit, batch_seconds, monotonic=self.clock)

    def webhook_records(self, subject: str) -> list[dict[str, Any]]:
        return [
            decision(record)
            for record in audit_records(self.dynamodb, self.table, subject=subject)
            if record["action"].startswith("audit_webhook_")
        ]


def message(request_id: str = "dtmf-1") -> QueuedDtmf:
    return QueuedDtmf.model_validate(
        {
            "id": request_id,
            "interaction_id": "session-1",
            "digits": "42#",
            "timeout_ms": 2000,
            "sequence_matrix_key": "main-menu",
            "node_transition_flag": False,
            "tone_duration_ms": 90,
            "tone_spacing_ms": 60,
            "accepted_at": datetime(2026, 11, 24, 12, 0, tzinfo=UTC).isoformat(),
            "correlation_id": f"corr-{request_id}",
        }
    )


def payload(request_id: str = "dtmf-1") -> dict[str, Any]:
    return {"request_id": request_id, "outcome": "sent"}


@pytest.fixture
def setup(stack, ticketing_sim) -> Setup:
    return Setup(stack, f"{ticketing_sim.url}{HOOK_URL_PATH}")


def test_retries_stop_at_the_batch_allowance_not_the_invocations(setup, ticketing_sim):
    ticketing_sim.add_fault(status=503, path_prefix="/hooks/")
    outbox = setup.outbox(batch_seconds=1.55)
    outbox.add(message(), payload())

    # The invocation has 30 s left; the batch may use 1.55 s of it. A retry is only waited for
    # when the wait and a further attempt (up to 1 s) fit: the first (0.2 s) does, the second
    # (0.4 s, with 1.35 s left) does not.
    outbox.flush(TimeBudget.fixed(30.0, clock=setup.clock))

    assert len(ticketing_sim.requests(path_prefix="/hooks/")) == 2
    assert setup.clock.now == 1000.2
    assert setup.webhook_records("dtmf-1") == [
        {
            "subject": "dtmf-1",
            "action": "audit_webhook_failed",
            "outcome": "failed",
            "reason": "audit-webhook: POST /hooks/dtmf-audit gave up after HTTP 503 (HTTP 503)",
            "details": None,
            "correlation_id": "corr-dtmf-1",
        }
    ]


class BrokenSession(requests.Session):
    """An HTTP stack failing with an error that is not an upstream's answer (a bug, say), whose
    message echoes what it was sending."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        raise TypeError(f"cannot send {kwargs.get('json')}")


def test_a_webhook_failure_that_is_not_an_upstream_error_is_audited_by_its_class_only(
    stack, ticketing_sim, captured_logs
):
    setup = Setup(stack, f"{ticketing_sim.url}{HOOK_URL_PATH}", session=BrokenSession())
    outbox = setup.outbox(batch_seconds=8.0)
    outbox.add(message(), payload())

    outbox.flush(TimeBudget.fixed(30.0, clock=setup.clock))

    # Its message could carry the payload, so only the error's class is kept.
    assert setup.webhook_records("dtmf-1") == [
        {
            "subject": "dtmf-1",
            "action": "audit_webhook_failed",
            "outcome": "failed",
            "reason": "TypeError",
            "details": None,
            "correlation_id": "corr-dtmf-1",
        }
    ]
    assert logged(captured_logs.getvalue(), "dtmf audit webhook not delivered") == [
        {
            "level": "WARNING",
            "message": "dtmf audit webhook not delivered",
            "request_id": "dtmf-1",
            "reason": "TypeError",
        }
    ]
