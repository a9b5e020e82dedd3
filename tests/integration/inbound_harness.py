"""Drives the inbound workflow through its two handlers, on moto built from template.yaml and the
CXone and ticketing simulators: POST to sms-ingest, then let the poller feed SQS batches to the
inbound-sms consumer with Lambda's partial-batch semantics and the queue's own redrive policy."""

from __future__ import annotations

import json
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from local.events import LocalLambdaContext, api_gateway_event
from local.handlers import load_handler_module
from local.poller import DeliveryResult, QueuePoller
from local.provision import Provisioned
from tests.conftest import cxone_environments

_deserializer = TypeDeserializer()


def sms(
    message_id: str = "msg-1", body: str = "Hi, my invoice shows a wrong amount", **overrides: Any
) -> dict:
    return {
        "id": message_id,
        "from": "+14155552671",
        "to": "+14155550100",
        "body": body,
        "opt_in": True,
        "timestamp": "2026-11-24T12:00:00Z",
    } | overrides


class InboundHarness:
    def __init__(self, stack: Provisioned, cxone_sim: Any, ticketing_sim: Any, monkeypatch: Any) -> None:
        self.stack = stack
        self.cxone = cxone_sim
        self.ticketing = ticketing_sim
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        for name, value in stack.function_environment("SmsIngestFunction").items():
            monkeypatch.setenv(name, value)
        self.ingest = load_handler_module("sms_ingest")
        consumer_env = stack.function_environment("InboundSmsFunction") | {
            "CXONE_ENVIRONMENTS": cxone_environments(cxone_sim.url),
            "TICKETING_BASE_URL": ticketing_sim.url,
        }
        for name, value in consumer_env.items():
            monkeypatch.setenv(name, value)
        self.consumer = load_handler_module("inbound_sms")
        self.queue_url = stack.queues["InboundSmsQueue"]
        source = next(s for s in stack.template.queue_sources() if s.function_id == "InboundSmsFunction")
        self.poller = QueuePoller(
            self.sqs,
            self.queue_url,
            stack.resolver.get_att("InboundSmsQueue", "Arn"),
            source,
            invoke=lambda event: self.consumer.lambda_handler(event, LocalLambdaContext("inbound-sms", 60)),
            batching_window_seconds=0,
        )

    # API -------------------------------------------------------------------------------------

    def post(self, body: dict | str, content_type: str | None = "application/json") -> tuple[int, dict]:
        text = body if isinstance(body, str) else json.dumps(body)
        headers = {"Content-Type": content_type} if content_type else {}
        event = api_gateway_event("POST", "/sms/inbound", text, headers)
        response = self.ingest.lambda_handler(event, LocalLambdaContext("sms-ingest", 10))
        return response["statusCode"], json.loads(response["body"])

    # Queues ----------------------------------------------------------------------------------

    def deliver(self) -> DeliveryResult:
        return self.poller.deliver_once()

    def drain(self, max_rounds: int = 20) -> list[DeliveryResult]:
        return self.poller.drain(max_rounds)

    def depth(self, queue_id: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.queues[queue_id],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def queued_bodies(self, queue_id: str) -> list[dict]:
        messages = self.sqs.receive_message(
            QueueUrl=self.stack.queues[queue_id], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    def redeliver_copy(self, body: dict) -> None:
        """What SQS at-least-once delivery can do: hand the same message over again."""
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    # State -----------------------------------------------------------------------------------

    def audit(self, subject: str | None = None) -> list[dict]:
        items = self.dynamodb.scan(TableName=self.stack.tables["AuditTable"])["Items"]
        records = [{key: _deserializer.deserialize(value) for key, value in item.items()} for item in items]
        records.sort(key=lambda record: record["sk"])
        return [r for r in records if subject is None or r["subject"] == subject]

    def audit_actions(self, subject: str) -> list[tuple[str, str]]:
        return [(record["action"], record["outcome"]) for record in self.audit(subject)]

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
