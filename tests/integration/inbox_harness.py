"""Drives the inbox-pull function through its handler, on moto built from template.yaml and the
CXone and ticketing simulators, with the clock a test chooses: the window, the checkpoint and its
lag are computed from it, and contacts are built relative to it (never to today's date)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from cxone_relay.platform.data.checkpoints import Checkpoint, CheckpointStore
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.workflows.social_inbox import wiring
from cxone_relay.workflows.social_inbox.settings import InboxPullSettings
from local.builders import audit_records
from local.events import LocalLambdaContext
from local.front import schedule_event, schedule_triggers
from local.handlers import load_handler_module
from local.provision import Provisioned
from tests.conftest import cxone_environments

FUNCTION = "InboxPullFunction"
CHECKPOINT = "social-inbox#primary"
WORKFLOW = "social-inbox"
# A Tuesday noon, UTC: far from midnight, so "an hour ago" and "in 30 minutes" are the same day.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TICKETS_PATH = "/api/v1/tickets/batch_upsert"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ScriptedContext(LocalLambdaContext):
    """A Lambda context whose remaining time the test decides (seconds, asked on every call)."""

    def __init__(self, remaining_seconds: Callable[[], float]) -> None:
        super().__init__("inbox-pull", 240)
        self.remaining_seconds = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds() * 1000)


class InboxHarness:
    def __init__(self, stack: Provisioned, cxone_sim: Any, ticketing_sim: Any, monkeypatch: Any) -> None:
        self.stack = stack
        self.cxone = cxone_sim
        self.ticketing = ticketing_sim
        self.monkeypatch = monkeypatch
        self.dynamodb = boto3.client("dynamodb")
        environment = stack.function_environment(FUNCTION) | {
            "CXONE_ENVIRONMENTS": cxone_environments(cxone_sim.url),
            "TICKETING_BASE_URL": ticketing_sim.url,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        self.handler = load_handler_module("inbox_pull")
        self.clock = FakeClock(NOW)
        # What a run's duration is measured on: still unless a test moves it.
        self.stopwatch = FakeClock(NOW)
        self.sleeps: list[float] = []
        self.trigger = schedule_triggers(stack.template, stack.resolver.resolve)[FUNCTION]

    def ago(self, **delta: float) -> datetime:
        return self.clock.now - timedelta(**delta)

    def run(self, context: Any = None, **variables: str) -> dict[str, Any]:
        """One scheduled invocation, in a new container built with the test's clock, sleeper and
        stopwatch (and any environment variables given, e.g. INBOX_RETENTION_DAYS="30")."""
        settings = InboxPullSettings.from_env({**os.environ, **variables})
        self.monkeypatch.setattr(
            self.handler,
            "pull",
            wiring.inbox_pull(
                settings, clock=self.clock, sleeper=self.sleeps.append, monotonic=self.stopwatch
            ),
        )
        result: dict[str, Any] = self.handler.lambda_handler(
            schedule_event(self.trigger), context or LocalLambdaContext("inbox-pull", 240)
        )
        return result

    # What happened -------------------------------------------------------------------------

    def ticket_calls(self) -> list[list[dict[str, Any]]]:
        """The tickets of every batch upsert the ticketing system accepted, call by call."""
        return [r["body"] for r in self.ticketing.requests(path_prefix=TICKETS_PATH) if r["status"] == 200]

    def upserted_ids(self) -> list[str]:
        return [ticket["external_id"] for call in self.ticket_calls() for ticket in call]

    def tickets(self) -> dict[str, dict[str, Any]]:
        return {ticket["external_id"]: ticket for ticket in self.ticketing.tickets()}

    def listing_requests(self) -> list[dict[str, Any]]:
        return self.cxone.requests(path_prefix="/dfo/3.0/contacts")

    def checkpoints(self) -> CheckpointStore:
        return CheckpointStore(DynamoTable(self.dynamodb, self.stack.tables["StateTable"]))

    def checkpoint(self) -> Checkpoint | None:
        return self.checkpoints().load(CHECKPOINT)

    def audit(self, subject: str | None = None) -> list[dict[str, Any]]:
        return audit_records(
            self.dynamodb, self.stack.tables["AuditTable"], workflow=WORKFLOW, subject=subject
        )
