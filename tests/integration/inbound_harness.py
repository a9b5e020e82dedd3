"""Drives the inbound workflow through its two handlers, on moto built from template.yaml and the
CXone and ticketing simulators: POST to the API function, then let the poller feed SQS batches to
the consumer with Lambda's partial-batch semantics and the queue's own redrive policy."""

from __future__ import annotations

import json
from typing import Any

import boto3

from cxone_relay.platform.data.consent import ConsentLedger
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.redaction import PhoneHasher
from local.builders import audit_items, audit_records, peek_bodies, peek_messages, queue_depth, scan_table
from local.events import LocalLambdaContext, api_gateway_event
from local.handlers import load_handler_module
from local.poller import DeliveryResult, QueuePoller
from local.provision import Provisioned
from tests.conftest import cxone_environments

API_FUNCTION = "InboundSmsApiFunction"
CONSUMER_FUNCTION = "InboundSmsConsumerFunction"


class InboundHarness:
    def __init__(self, stack: Provisioned, cxone_sim: Any, ticketing_sim: Any, monkeypatch: Any) -> None:
        self.stack = stack
        self.cxone = cxone_sim
        self.ticketing = ticketing_sim
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        for name, value in stack.function_environment(API_FUNCTION).items():
            monkeypatch.setenv(name, value)
        self.api = load_handler_module("inbound_sms_api")
        self._monkeypatch = monkeypatch
        self.queue_url = stack.queues["InboundSmsQueue"]
        self.start_consumer()
        source = next(s for s in stack.template.queue_sources() if s.function_id == CONSUMER_FUNCTION)
        self.poller = QueuePoller(
            self.sqs,
            self.queue_url,
            stack.resolver.get_att("InboundSmsQueue", "Arn"),
            source,
            invoke=lambda event: self.consumer.lambda_handler(event, LocalLambdaContext("inbound-sms", 60)),
            batching_window_seconds=0,
        )

    def start_consumer(self, **cxone_environment: Any) -> None:
        """A new consumer container, its CXone environments pointed at the simulator (fields given
        here override the primary's defaults; None removes one)."""
        primary, *others = json.loads(cxone_environments(self.cxone.url))
        environment = primary | cxone_environment
        environments = [{k: v for k, v in environment.items() if v is not None}, *others]
        consumer_env = self.stack.function_environment(CONSUMER_FUNCTION) | {
            "CXONE_ENVIRONMENTS": json.dumps(environments),
            "TICKETING_BASE_URL": self.ticketing.url,
        }
        for name, value in consumer_env.items():
            self._monkeypatch.setenv(name, value)
        self.consumer = load_handler_module("inbound_sms_consumer")

    # API -------------------------------------------------------------------------------------

    def post(
        self, body: dict | str | bytes, content_type: str | None = "application/json"
    ) -> tuple[int, dict]:
        response = self.invoke_api(body, content_type)
        return response["statusCode"], json.loads(response["body"])

    def invoke_api(self, body: dict | str | bytes, content_type: str | None = "application/json") -> dict:
        """The API function with the event API Gateway would send (bodies base64, as the API's
        BinaryMediaTypes say)."""
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        headers = {"Content-Type": content_type} if content_type else {}
        [route] = [r for r in self.stack.template.api_routes() if r.function_id == API_FUNCTION]
        event = api_gateway_event("POST", "/sms/inbound", raw, headers, binary=route.binary_bodies)
        # API Gateway's request id: the correlation id of everything the request leads to.
        self.last_request_id = event["requestContext"]["requestId"]
        response: dict = self.api.lambda_handler(event, LocalLambdaContext("inbound-sms-api", 10))
        return response

    # Queues ----------------------------------------------------------------------------------

    def deliver(self) -> DeliveryResult:
        return self.poller.deliver_once()

    def drain(self, max_rounds: int = 20) -> list[DeliveryResult]:
        return self.poller.drain(max_rounds)

    def depth(self, queue_id: str) -> int:
        return sum(queue_depth(self.sqs, self.stack.queues[queue_id]).values())

    def queued_bodies(self, queue_id: str) -> list[dict]:
        return peek_bodies(self.sqs, self.stack.queues[queue_id])

    def queued_messages(self, queue_id: str) -> list[tuple[str, dict[str, str]]]:
        """(body, message attributes) waiting in a queue."""
        return peek_messages(self.sqs, self.stack.queues[queue_id])

    def dead_letters(self) -> list[tuple[str, dict[str, str]]]:
        """(raw body, message attributes) of what is in the inbound DLQ."""
        return peek_messages(self.sqs, self.stack.queues["InboundSmsDLQ"], rounds=3)

    def redeliver_copy(self, body: dict) -> None:
        """What SQS at-least-once delivery can do: hand the same message over again."""
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    # State -----------------------------------------------------------------------------------

    def audit(self, subject: str | None = None) -> list[dict]:
        """Every audited decision, one per step of a stage's record."""
        return audit_records(self.dynamodb, self.stack.tables["AuditTable"], subject=subject)

    def audit_items(self, subject: str | None = None) -> list[dict]:
        """The audit table's items as stored (a consumer writes one per message, with its steps)."""
        return audit_items(self.dynamodb, self.stack.tables["AuditTable"], subject=subject)

    def idempotency_records(self) -> list[dict]:
        return scan_table(self.dynamodb, self.stack.tables["IdempotencyTable"])

    def audit_actions(self, subject: str) -> list[tuple[str, str]]:
        return [(record["action"], record["outcome"]) for record in self.audit(subject)]

    def consent_ledger(self) -> ConsentLedger:
        """The ledger as the functions see it: the state table and the stack's PII hash key."""
        key = boto3.client("secretsmanager").get_secret_value(SecretId=self.stack.secrets["PiiHashKeySecret"])
        return ConsentLedger(
            DynamoTable(self.dynamodb, self.stack.tables["StateTable"]), PhoneHasher(key["SecretString"])
        )

    def stored_in_cxone(self, channel: str = "sms-channel") -> list[dict]:
        return self.cxone.state()["messages"].get(channel, [])

    def replies(self) -> list[dict]:
        return self.cxone.state()["outbound"]

    def ticket_calls(self) -> list[dict]:
        return [
            r
            for r in self.ticketing.requests(path_prefix="/api/v1/tickets/batch_upsert")
            if r["status"] == 200
        ]
