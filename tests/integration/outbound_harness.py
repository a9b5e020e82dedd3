"""Drives the outbound SMS and delivery status workflow through its five handlers, on moto built
from template.yaml and the CXone and ticketing simulators, with one clock for all of them (quiet
hours and signatures are decided by it): POST to the API functions, feed SQS batches to the
consumers with Lambda's partial-batch semantics, run the release sweep as its schedule would."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3

from cxone_relay.platform.data.consent import ConsentChange, ConsentLedger, ConsentStatus
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.workflows.outbound_sms import wiring
from cxone_relay.workflows.outbound_sms.settings import (
    DeliveryStatusConsumerSettings,
    DeliveryWebhookSettings,
    HeldReleaseSettings,
    OutboundApiSettings,
    OutboundConsumerSettings,
)
from cxone_relay.workflows.outbound_sms.signatures import sign
from local.builders import audit_records, peek_bodies, peek_messages, queue_depth, scan_table
from local.events import LocalLambdaContext, api_gateway_event
from local.handlers import load_handler_module
from local.poller import DeliveryResult, QueuePoller
from local.provision import Provisioned
from tests.conftest import WEBHOOK_SECRET, cxone_environments
from tests.logs import logged_lines

API = "OutboundSmsApiFunction"
CONSUMER = "OutboundSmsConsumerFunction"
RELEASE = "HeldMessageReleaseFunction"
WEBHOOK = "DeliveryWebhookFunction"
STATUS_CONSUMER = "DeliveryStatusConsumerFunction"
SEND_PATH = "/dfo/3.0/channels/sms-channel/outbound"
STATUS_PATH_PREFIX = "/dfo/3.0/channels/sms-channel/messages/"
API_KEY_ID = "client-key-1"


# What an audit record says, without its keys, hash and time.
DECISION = ("action", "outcome", "reason", "phone_masked", "details", "correlation_id")


def logged(captured_logs: Any, message: str) -> list[dict]:
    """The log lines with this message: level, message and the line's own extra keys."""
    return logged_lines(captured_logs.getvalue(), message)


def metric_values(output: str, name: str) -> list[tuple[list[float], dict[str, str]]]:
    """(values, dimensions) of every EMF document in printed output that carries the metric."""
    found = []
    for line in output.splitlines():
        if line.startswith('{"_aws"') and name in (document := json.loads(line)):
            [directive] = document["_aws"]["CloudWatchMetrics"]
            dimensions = {
                key: document[key]
                for names in directive["Dimensions"]
                for key in names
                if key not in {"stack", "service"}
            }
            found.append((document[name], dimensions))
    return found


class Clock:
    """The time every function sees; tests move it."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class OutboundHarness:
    def __init__(
        self, stack: Provisioned, cxone_sim: Any, ticketing_sim: Any, monkeypatch: Any, clock: Clock
    ) -> None:
        self.stack = stack
        self.cxone = cxone_sim
        self.ticketing = ticketing_sim
        self.clock = clock
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        self._monkeypatch = monkeypatch
        self.sleeps: list[float] = []
        # The API functions as Lambda loads them, their clock-dependent parts built by the same wiring.
        self._set_environment(API, STATUS_WEBHOOK_ALLOW_LOCAL="true")
        self.api = load_handler_module("outbound_sms_api")
        self.api.intake = wiring.intake(OutboundApiSettings.from_env(), clock=clock)
        self._set_environment(WEBHOOK)
        self.webhook = load_handler_module("delivery_webhook")
        self.webhook.delivery, self.webhook.verifier = wiring.delivery_intake(
            DeliveryWebhookSettings.from_env(), clock=clock
        )
        # Consumers and the sweep: their handler modules (log_metrics flushes what they emit),
        # the objects inside built by the same wiring with the harness's clock and sleeper.
        self._set_environment(CONSUMER, CXONE_ENVIRONMENTS=cxone_environments(cxone_sim.url))
        self.consumer = load_handler_module("outbound_sms_consumer")
        self.consumer.consumer = wiring.consumer(
            OutboundConsumerSettings.from_env(), clock=clock, sleeper=self.sleeps.append
        )
        self._set_environment(STATUS_CONSUMER, CXONE_ENVIRONMENTS=cxone_environments(cxone_sim.url))
        self.status_consumer = load_handler_module("delivery_status_consumer")
        self.status_consumer.consumer = wiring.status_consumer(
            DeliveryStatusConsumerSettings.from_env(), clock=clock, sleeper=self.sleeps.append
        )
        self._set_environment(RELEASE)
        self.release = load_handler_module("held_message_release")
        self.release.release = wiring.held_release(HeldReleaseSettings.from_env(), clock=clock)
        self.poller = self._poller("OutboundSmsQueue", CONSUMER, self.consumer.lambda_handler)
        self.status_poller = self._poller(
            "DeliveryStatusQueue", STATUS_CONSUMER, self.status_consumer.lambda_handler
        )

    def strict_webhooks(self) -> None:
        """A new API container as deployed: webhookUrl must be https and not on this network (the
        harness otherwise lets it point at the ticketing simulator, as the local stack does)."""
        self.new_api_container(STATUS_WEBHOOK_ALLOW_LOCAL="false")

    def new_api_container(self, **environment: str) -> None:
        """The API function's next container, started with these variables changed."""
        self._set_environment(API, **environment)
        self.api.intake = wiring.intake(OutboundApiSettings.from_env(), clock=self.clock)

    def _set_environment(self, function_id: str, **overrides: str) -> None:
        for name, value in (self.stack.function_environment(function_id) | overrides).items():
            self._monkeypatch.setenv(name, value)

    def _poller(self, queue_id: str, function_id: str, handle: Any) -> QueuePoller:
        source = next(s for s in self.stack.template.queue_sources() if s.function_id == function_id)
        return QueuePoller(
            self.sqs,
            self.stack.queues[queue_id],
            self.stack.resolver.get_att(queue_id, "Arn"),
            source,
            invoke=lambda event: handle(event, LocalLambdaContext(function_id, 60)),
            batching_window_seconds=0,
        )

    # API -------------------------------------------------------------------------------------

    def send(self, body: dict | str | bytes, idempotency_key: str | None = None) -> tuple[int, dict]:
        status, raw = self.send_raw(body, idempotency_key)
        return status, json.loads(raw)

    def send_raw(self, body: dict | str | bytes, idempotency_key: str | None = None) -> tuple[int, str]:
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        event = api_gateway_event("POST", "/sms/outbound", raw, headers, binary=True, api_key_id=API_KEY_ID)
        response = self.api.lambda_handler(event, LocalLambdaContext("outbound-sms-api", 10))
        return response["statusCode"], response["body"]

    def report(
        self,
        body: dict | str | bytes,
        *,
        secret: str = WEBHOOK_SECRET,
        signed_at: float | None = None,
        signature: str | None = None,
        signed_body: bytes | None = None,
    ) -> tuple[int, dict]:
        """POST /sms/status as the SMS channel does: signed over the raw body at `signed_at`."""
        raw = (
            (body if isinstance(body, bytes) else body.encode())
            if isinstance(body, str | bytes)
            else json.dumps(body).encode()
        )
        moment = int(signed_at if signed_at is not None else self.clock())
        header = signature if signature is not None else sign(secret, signed_body or raw, moment)
        headers = {"Content-Type": "application/json", "X-Signature": header} if header else {}
        event = api_gateway_event("POST", "/sms/status", raw, headers, binary=True)
        response = self.webhook.lambda_handler(event, LocalLambdaContext("delivery-webhook", 10))
        return response["statusCode"], json.loads(response["body"])

    # Queues and schedule ---------------------------------------------------------------------

    def deliver(self) -> DeliveryResult:
        return self.poller.deliver_once()

    def deliver_statuses(self) -> DeliveryResult:
        return self.status_poller.deliver_once()

    def sweep(self) -> dict[str, Any]:
        result: dict[str, Any] = self.release.lambda_handler(
            {}, LocalLambdaContext("held-message-release", 60)
        )
        return result

    def depth(self, queue_id: str = "OutboundSmsQueue") -> int:
        return sum(queue_depth(self.sqs, self.stack.queues[queue_id]).values())

    def queued(self, queue_id: str = "OutboundSmsQueue") -> list[dict]:
        return peek_bodies(self.sqs, self.stack.queues[queue_id])

    def enqueue(self, body: dict, queue_id: str = "OutboundSmsQueue") -> None:
        """What SQS at-least-once delivery can do: hand the same message over again."""
        self.sqs.send_message(QueueUrl=self.stack.queues[queue_id], MessageBody=json.dumps(body))

    def dead_letters(self, queue_id: str = "OutboundSmsDLQ") -> list[tuple[str, dict[str, str]]]:
        return peek_messages(self.sqs, self.stack.queues[queue_id], rounds=3)

    # State -----------------------------------------------------------------------------------

    def hasher(self) -> PhoneHasher:
        key = boto3.client("secretsmanager").get_secret_value(SecretId=self.stack.secrets["PiiHashKeySecret"])
        return PhoneHasher(key["SecretString"])

    def consent(self, phone: str, status: ConsentStatus, when: datetime | None = None) -> None:
        ledger = ConsentLedger(DynamoTable(self.dynamodb, self.stack.tables["StateTable"]), self.hasher())
        moment = when or self.clock.moment
        ledger.record(ConsentChange(phone, status, "sms", f"ref-{status.value}-{moment.timestamp()}", moment))

    def state_items(self, prefix: str) -> list[dict]:
        return [
            i
            for i in scan_table(self.dynamodb, self.stack.tables["StateTable"])
            if str(i["pk"]).startswith(prefix)
        ]

    def status_of(self, message_id: str) -> dict:
        [item] = self.state_items(f"message#{message_id}")
        return item

    def idempotency_records(self) -> list[dict]:
        return scan_table(self.dynamodb, self.stack.tables["IdempotencyTable"])

    def audit(self, subject: str | None = None, workflow: str | None = None) -> list[dict]:
        return audit_records(
            self.dynamodb, self.stack.tables["AuditTable"], workflow=workflow, subject=subject
        )

    def decisions(self, subject: str, workflow: str, action: str | None = None) -> list[dict]:
        """What each audit record of a subject says (DECISION), optionally of one action."""
        return [
            {key: record[key] for key in DECISION if key in record}
            for record in self.audit(subject, workflow=workflow)
            if action is None or record["action"] == action
        ]

    def consumer_outcomes(self, prefix: str) -> list[dict]:
        """What a consumer decided for each message it completed, as its idempotency records keep it."""
        return [
            json.loads(record["data"])
            for record in self.idempotency_records()
            if record["id"].startswith(f"{prefix}#") and record["status"] == "COMPLETED"
        ]

    def audit_actions(self, subject: str) -> list[tuple[str, str]]:
        return [(record["action"], record["outcome"]) for record in self.audit(subject)]

    # Outside world ---------------------------------------------------------------------------

    def sent(self) -> list[dict]:
        """What CXone sent (each outbound message once, however often it was asked)."""
        return self.cxone.state()["outbound"]

    def send_requests(self) -> list[dict]:
        return self.cxone.requests(path_prefix=SEND_PATH)

    def cxone_statuses(self) -> list[dict]:
        return self.cxone.state()["statuses"]

    def hooks(self, name: str = "status") -> list[dict]:
        return self.ticketing.hooks(name)
