"""Drives the consent workflow through its two handlers, on moto built from template.yaml and the
CXone simulator with two environments (primary: DNC group 1, emea: DNC group 7, each with its own
credentials): requests to the consent API function, then the poller feeding opt-out batches to
the consumer with Lambda's partial-batch semantics and the queue's redrive policy.

Both handlers run with the test's clock (request and applied times, so the lag, come from it) and
a sleeper that records waits instead of sleeping (Retry-After and backoff)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3

from cxone_relay.platform.data.consent import ConsentLedger
from cxone_relay.platform.data.dnc import DncSyncStore
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.workflows.consent import wiring
from cxone_relay.workflows.consent.settings import ConsentApiSettings, OptOutConsumerSettings
from local.builders import audit_records, peek_messages, queue_depth
from local.events import LocalLambdaContext, api_gateway_event
from local.handlers import load_handler_module
from local.poller import DeliveryResult, QueuePoller
from local.provision import Provisioned
from tests.conftest import EMEA_CREDENTIALS, SIM_CREDENTIALS, cxone_environments

API_FUNCTION = "ConsentApiFunction"
CONSUMER_FUNCTION = "OptOutConsumerFunction"
WORKFLOW = "consent"
GROUPS = {"primary": "1", "emea": "7"}
CLIENTS = {"primary": SIM_CREDENTIALS["client_id"], "emea": EMEA_CREDENTIALS["client_id"]}


def dnc_path(group: str) -> str:
    return f"/inContactAPI/services/v27.0/dnc-groups/{group}/records"


class Clock:
    """Now when the test runs (never a fixed date), to the second so times compare exactly, moved
    on by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ConsentHarness:
    def __init__(self, stack: Provisioned, cxone_sim: Any, monkeypatch: Any) -> None:
        self.stack = stack
        self.cxone = cxone_sim
        self.monkeypatch = monkeypatch
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        self.clock = Clock()
        self.sleeps: list[float] = []
        for name, value in stack.function_environment(API_FUNCTION).items():
            monkeypatch.setenv(name, value)
        self.api = load_handler_module("consent_api")
        monkeypatch.setattr(
            self.api, "intake", wiring.intake(ConsentApiSettings.from_env(), clock=self.clock)
        )
        self.queue_url = stack.queues["OptOutQueue"]
        self.start_consumer()
        source = next(s for s in stack.template.queue_sources() if s.function_id == CONSUMER_FUNCTION)
        self.poller = QueuePoller(
            self.sqs,
            self.queue_url,
            stack.resolver.get_att("OptOutQueue", "Arn"),
            source,
            invoke=lambda event: self.consumer.lambda_handler(event, LocalLambdaContext("opt-out", 60)),
            batching_window_seconds=0,
        )

    def start_consumer(self, **variables: str) -> None:
        """A new consumer container with both environments on the simulator (and any other
        variables given, e.g. CXONE_MAX_ATTEMPTS="2")."""
        environment = self.stack.function_environment(CONSUMER_FUNCTION) | {
            "CXONE_ENVIRONMENTS": cxone_environments(self.cxone.url),
            **variables,
        }
        for name, value in environment.items():
            self.monkeypatch.setenv(name, value)
        self.consumer = load_handler_module("opt_out_consumer")
        settings = OptOutConsumerSettings.from_env({**os.environ, **environment})
        self.monkeypatch.setattr(
            self.consumer,
            "consumer",
            wiring.consumer(settings, clock=self.clock, sleeper=self.sleeps.append),
        )

    # API -------------------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any] | str | bytes) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        route = next(r for r in self.stack.template.api_routes() if r.path == path)
        event = api_gateway_event(
            "POST", path, raw, {"Content-Type": "application/json"}, binary=route.binary_bodies
        )
        self.last_request_id = event["requestContext"]["requestId"]
        return self._invoke(event)

    def opt_out(self, phone: str, source: str = "web", **fields: Any) -> tuple[int, dict[str, Any]]:
        return self.post("/opt-out", {"phone": phone, "source": source, **fields})

    def opt_in(self, phone: str, source: str = "web", **fields: Any) -> tuple[int, dict[str, Any]]:
        return self.post("/opt-in", {"phone": phone, "source": source, **fields})

    def lookup(self, phone: str, query: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """GET /consent/{phone}, the number percent-encoded in the path as a client sends it."""
        path = f"/consent/{quote(phone, safe='')}"
        event = api_gateway_event("GET", path, None, {}, query=query, resource="/consent/{phone}")
        event["pathParameters"] = {"phone": phone}
        self.last_request_id = event["requestContext"]["requestId"]
        return self._invoke(event)

    def _invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.api.lambda_handler(event, LocalLambdaContext("consent-api", 10))
        return response["statusCode"], json.loads(response["body"])

    # Queue -----------------------------------------------------------------------------------

    def deliver(self) -> DeliveryResult:
        return self.poller.deliver_once()

    def drain(self, max_rounds: int = 20) -> list[DeliveryResult]:
        return self.poller.drain(max_rounds)

    def queue(self, body: dict[str, Any]) -> None:
        """Put a message on the opt-out queue as a producer would."""
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def queued(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in peek_messages(self.sqs, self.queue_url)]

    def depth(self, queue_id: str = "OptOutQueue") -> int:
        return sum(queue_depth(self.sqs, self.stack.queues[queue_id]).values())

    def dead_letters(self) -> list[tuple[str, dict[str, str]]]:
        return peek_messages(self.sqs, self.stack.queues["OptOutDLQ"], rounds=3)

    # CXone -----------------------------------------------------------------------------------

    def dnc(self, environment: str) -> list[str]:
        """The numbers (digits, as CXone keeps them) in an environment's DNC group."""
        numbers: list[str] = self.cxone.state()["dnc"].get(GROUPS[environment], [])
        return numbers

    def dnc_calls(self, environment: str) -> list[dict[str, Any]]:
        """Every DNC add request to an environment's group, in order (with its status)."""
        calls: list[dict[str, Any]] = self.cxone.requests(path_prefix=dnc_path(GROUPS[environment]))
        return calls

    def sent(self, environment: str) -> list[list[str]]:
        """The numbers of each DNC add call that CXone answered 200."""
        return [
            [record["phoneNumber"] for record in call["body"]["dncGroupRecords"]]
            for call in self.dnc_calls(environment)
            if call["status"] == 200
        ]

    # State -----------------------------------------------------------------------------------

    def hasher(self) -> PhoneHasher:
        key = boto3.client("secretsmanager").get_secret_value(SecretId=self.stack.secrets["PiiHashKeySecret"])
        return PhoneHasher(key["SecretString"])

    def state_table(self) -> DynamoTable:
        return DynamoTable(self.dynamodb, self.stack.tables["StateTable"])

    def ledger(self) -> ConsentLedger:
        return ConsentLedger(self.state_table(), self.hasher())

    def syncs(self) -> DncSyncStore:
        return DncSyncStore(self.state_table(), self.hasher())

    def audit(self, subject: str | None = None) -> list[dict[str, Any]]:
        return audit_records(
            self.dynamodb, self.stack.tables["AuditTable"], workflow=WORKFLOW, subject=subject
        )

    def actions(self, subject: str) -> list[tuple[str, str, str | None]]:
        """(action, outcome, environment) of a subject's audit records, in order."""
        return [
            (r["action"], r["outcome"], (r.get("details") or {}).get("environment"))
            for r in self.audit(subject)
        ]
