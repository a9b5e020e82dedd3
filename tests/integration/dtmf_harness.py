"""Drives the DTMF workflow through its two handlers, on moto built from template.yaml and the
CXone and ticketing simulators: POST to the API function, then let the poller feed SQS batches to
the consumer with Lambda's partial-batch semantics. The audit webhook points at the ticketing
simulator, which records what is posted under /hooks/."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from cxone_relay.workflows.dtmf import wiring
from cxone_relay.workflows.dtmf.settings import DtmfConsumerSettings
from local.builders import audit_records, peek_messages, queue_depth
from local.events import LocalLambdaContext, api_gateway_event
from local.handlers import load_handler_module
from local.poller import DeliveryResult, QueuePoller
from local.provision import Provisioned
from local.runtime import DTMF_AUDIT_HOOK_PATH
from tests.conftest import cxone_environments
from tests.logs import logged_lines

API_FUNCTION = "DtmfApiFunction"
CONSUMER_FUNCTION = "DtmfConsumerFunction"
SEND_DTMF_PREFIX = "/inContactAPI/services/v23.0/agent-sessions/"
HOOK = DTMF_AUDIT_HOOK_PATH.removeprefix("/hooks/")
logged = logged_lines  # each line logged with this message, without the logger's context


def decision(record: dict[str, Any]) -> dict[str, Any]:
    """An audit record as the decision it holds, without its keys and times."""
    fields = ("subject", "action", "outcome", "reason", "details", "correlation_id")
    return {field: record.get(field) for field in fields}


class FrozenLambdaContext(LocalLambdaContext):
    """A Lambda context whose remaining time stays where it is: budgets that depend on it are
    exact, however long the test's own steps take."""

    def __init__(self, function_name: str, remaining_ms: int) -> None:
        super().__init__(function_name)
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class DtmfHarness:
    def __init__(
        self,
        stack: Provisioned,
        cxone_sim: Any,
        ticketing_sim: Any,
        monkeypatch: Any,
        *,
        consumer: bool = True,
    ) -> None:
        """Without `consumer`, only the API function runs (the simulators may then be None)."""
        self.stack = stack
        self.cxone = cxone_sim
        self.ticketing = ticketing_sim
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        self._monkeypatch = monkeypatch
        self.start_api()
        self.queue_url = stack.queues["DtmfQueue"]
        self.webhook_sleeps: list[float] = []
        # When set, the consumer is invoked with exactly this much time left.
        self.remaining_ms: int | None = None
        if consumer:
            self.start_consumer()
        source = next(s for s in stack.template.queue_sources() if s.function_id == CONSUMER_FUNCTION)
        self.poller = QueuePoller(
            self.sqs,
            self.queue_url,
            stack.resolver.get_att("DtmfQueue", "Arn"),
            source,
            invoke=self.invoke_consumer,
            batching_window_seconds=0,
        )

    def start_api(self, **environment: str) -> None:
        """A new API container, with the template's environment and these overrides."""
        self.set_environment(self.stack.function_environment(API_FUNCTION) | environment)
        self.api = load_handler_module("dtmf_api")

    def set_environment(self, environment: dict[str, str]) -> None:
        for name, value in environment.items():
            self._monkeypatch.setenv(name, value)

    def consumer_environment(self, **overrides: str) -> dict[str, str]:
        return (
            self.stack.function_environment(CONSUMER_FUNCTION)
            | {
                "CXONE_ENVIRONMENTS": cxone_environments(self.cxone.url),
                "DTMF_AUDIT_WEBHOOK_URL": f"{self.ticketing.url}{DTMF_AUDIT_HOOK_PATH}",
            }
            | overrides
        )

    def start_consumer(self, **environment: str) -> None:
        """A new consumer container (its handler module, as Lambda loads it)."""
        self.set_environment(self.consumer_environment(**environment))
        module = load_handler_module("dtmf_consumer")
        self._handle: Callable[[dict[str, Any], Any], Any] = module.lambda_handler

    def start_consumer_without_sleeping(self, **environment: str) -> None:
        """A consumer built by the same wiring, whose webhook retries record their waits instead
        of sleeping them."""
        self.set_environment(self.consumer_environment(**environment))
        self._handle = wiring.consumer(
            DtmfConsumerSettings.from_env(), sleeper=self.webhook_sleeps.append
        ).handle

    def invoke_consumer(self, event: dict[str, Any]) -> Any:
        if self.remaining_ms is not None:
            return self._handle(event, FrozenLambdaContext("dtmf-consumer", self.remaining_ms))
        return self._handle(event, LocalLambdaContext("dtmf-consumer", 30))

    # API -------------------------------------------------------------------------------------

    def post(self, body: dict | str | bytes) -> tuple[int, dict]:
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        [route] = [r for r in self.stack.template.api_routes() if r.function_id == API_FUNCTION]
        event = api_gateway_event(
            "POST", route.path, raw, {"Content-Type": "application/json"}, binary=route.binary_bodies
        )
        # API Gateway's request id: the correlation id of everything the request leads to.
        self.last_api_request_id = event["requestContext"]["requestId"]
        response = self.api.lambda_handler(event, LocalLambdaContext("dtmf-api", 10))
        return response["statusCode"], json.loads(response["body"])

    # Queues ----------------------------------------------------------------------------------

    def deliver(self) -> DeliveryResult:
        return self.poller.deliver_once()

    def drain(self) -> list[DeliveryResult]:
        return self.poller.drain(20)

    def depth(self, queue_id: str = "DtmfQueue") -> int:
        return sum(queue_depth(self.sqs, self.stack.queues[queue_id]).values())

    def queued(self) -> list[dict]:
        """The bodies on the dtmf queue, read without taking them."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        return [json.loads(m["Body"]) for m in response.get("Messages", [])]

    def enqueue(self, body: dict) -> None:
        """Put a message on the queue as the API function would (or as SQS redelivers one)."""
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def dead_letters(self) -> list[tuple[str, dict[str, str]]]:
        return peek_messages(self.sqs, self.stack.queues["DtmfDLQ"], rounds=3)

    # Outside world ---------------------------------------------------------------------------

    def sends(self) -> list[dict]:
        """Every send-dtmf request CXone received (faulted ones included)."""
        return self.cxone.requests(path_prefix=SEND_DTMF_PREFIX)

    def played(self) -> list[dict]:
        """What CXone played into sessions."""
        return self.cxone.state()["dtmf"]

    def hooks(self) -> list[dict]:
        return self.ticketing.hooks(HOOK)

    def audit(self, subject: str | None = None) -> list[dict]:
        return audit_records(self.dynamodb, self.stack.tables["AuditTable"], workflow="dtmf", subject=subject)

    def audit_actions(self, subject: str) -> list[tuple[str, str]]:
        return [(record["action"], record["outcome"]) for record in self.audit(subject)]
