"""Builders and readers shared by the unit, integration and e2e tests and by the demo: request
payloads, audit scans and queue depths, written once so every caller agrees on them.

Timestamps default to the current time (callers that need another instant pass it), so nothing
built here goes stale as the calendar moves.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

SENDER = "+14155552671"
OUR_NUMBER = "+14155550100"
QUEUE_DEPTH_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]
_deserializer = TypeDeserializer()


def iso_utc(moment: datetime | None = None) -> str:
    """An ISO 8601 UTC timestamp with a Z, to the second (now by default)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def inbound_sms(
    message_id: str = "msg-1",
    body: str = "Hi, my invoice shows a wrong amount",
    *,
    sender: str = SENDER,
    recipient: str = OUR_NUMBER,
    opt_in: bool = True,
    timestamp: str | float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The body an SMS channel POSTs to /sms/inbound."""
    return {
        "id": message_id,
        "from": sender,
        "to": recipient,
        "body": body,
        "opt_in": opt_in,
        "timestamp": iso_utc() if timestamp is None else timestamp,
    } | overrides


def fullwidth(text: str) -> str:
    """The text as a full-width (CJK) keyboard types it: ASCII digits, signs and letters become
    their full-width forms; spaces stay."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


def iso_millis(moment: datetime) -> str:
    """An ISO 8601 UTC timestamp with milliseconds and a Z, as DFO writes its times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def social_contact(
    contact_id: str,
    text: str | None,
    *,
    updated_at: datetime,
    created_at: datetime | None = None,
    channel: str = "FACEBOOK",
    status: str = "open",
    subject: str | None = None,
    body: str | None = None,
    replies: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A contact as POST /_sim/contacts takes it: the customer's `text` as one inbound message
    (none when None), and any agent `replies` as outbound ones."""
    created = created_at or updated_at
    messages = [] if text is None else [_dfo_message(f"{contact_id}-in", "inbound", created, text)]
    for n, reply in enumerate(replies):
        messages.append(_dfo_message(f"{contact_id}-out-{n}", "outbound", updated_at, reply))
    return {
        "id": contact_id,
        "channel": channel,
        "status": status,
        "subject": subject,
        "body": body,
        "createdAt": iso_millis(created),
        "updatedAt": iso_millis(updated_at),
        "messages": messages,
    }


def _dfo_message(message_id: str, direction: str, created_at: datetime, text: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": direction,
        "createdAt": iso_millis(created_at),
        "messageContent": {"type": "TEXT", "payload": {"text": text}},
    }


def dtmf_request(
    interaction_id: str = "session-1",
    digits: str = "1234#",
    *,
    timeout_ms: int = 5000,
    sequence_matrix_key: str = "main-menu",
    node_transition_flag: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """The body a client POSTs to /dtmf (tone duration and spacing left to their defaults)."""
    return {
        "interaction_id": interaction_id,
        "digits": digits,
        "timeout_ms": timeout_ms,
        "sequence_matrix_key": sequence_matrix_key,
        "node_transition_flag": node_transition_flag,
    } | overrides


def scan_table(dynamodb: Any, table_name: str) -> list[dict[str, Any]]:
    """Every item of a table as plain Python values (all pages)."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table_name}
    while True:
        page = dynamodb.scan(**request)
        items.extend(
            {key: _deserializer.deserialize(value) for key, value in item.items()} for item in page["Items"]
        )
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def audit_items(
    dynamodb: Any, table_name: str, *, workflow: str | None = None, subject: str | None = None
) -> list[dict[str, Any]]:
    """Audit items as stored, in the order they were written, optionally of one workflow or subject."""
    items = sorted(scan_table(dynamodb, table_name), key=lambda item: str(item["sk"]))
    return [
        item
        for item in items
        if (workflow is None or item.get("workflow") == workflow)
        and (subject is None or item.get("subject") == subject)
    ]


def audit_records(
    dynamodb: Any, table_name: str, *, workflow: str | None = None, subject: str | None = None
) -> list[dict[str, Any]]:
    """Every audited decision in order, one per step: an item that lists the steps of a stage
    becomes one record per step, each with the item's subject, number and correlation id and the
    step's own action, outcome, reason, details and time (recorded_at)."""
    return [
        record
        for item in audit_items(dynamodb, table_name, workflow=workflow, subject=subject)
        for record in audit_steps(item)
    ]


def stored_fields(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item (audit record, status record) without its key and the times it was written
    and expires: what the workflow decided, which a test can compare whole."""
    return {key: value for key, value in item.items() if key not in {"pk", "sk", "recorded_at", "expires_at"}}


def audit_steps(item: dict[str, Any]) -> list[dict[str, Any]]:
    """An audit item as the decisions it holds (itself, when it holds no steps)."""
    if "steps" not in item:
        return [item]
    shared = {key: value for key, value in item.items() if key not in {"steps", "action", "outcome"}}
    return [
        shared | {key: value for key, value in step.items() if key != "at"} | {"recorded_at": step["at"]}
        for step in item["steps"]
    ]


def queue_depth(sqs: Any, queue_url: str) -> dict[str, int]:
    """Messages in a queue: visible, in flight and (when any) delayed."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=QUEUE_DEPTH_ATTRIBUTES)[
        "Attributes"
    ]
    depth = {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }
    delayed = int(attributes.get("ApproximateNumberOfMessagesDelayed", 0))
    if delayed:
        depth["delayed"] = delayed
    return depth


def peek_messages(sqs: Any, queue_url: str, rounds: int = 1) -> list[tuple[str, dict[str, str]]]:
    """(body, string message attributes) of what waits in a queue, read without taking it."""
    messages: dict[str, tuple[str, dict[str, str]]] = {}
    for _ in range(rounds):
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        )
        for message in response.get("Messages", []):
            attributes = {
                k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()
            }
            messages[message["MessageId"]] = (message["Body"], attributes)
    return list(messages.values())


def peek_bodies(sqs: Any, queue_url: str, rounds: int = 1) -> list[dict[str, Any]]:
    """The JSON bodies waiting in a queue, read without taking them (visibility 0), de-duplicated.
    Every read counts as a receive, and enough receives send a message to its DLQ: more than one
    round is for queues without a redrive policy (the DLQs themselves)."""
    bodies: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        for message in response.get("Messages", []):
            bodies[message["MessageId"]] = json.loads(message["Body"])
    return list(bodies.values())


def emf_units(output: str) -> dict[str, str | None]:
    """Each EMF metric's unit in printed output, by name (dashboards and alarms read it)."""
    return {
        metric["Name"]: metric.get("Unit")
        for line in output.splitlines()
        if line.startswith('{"_aws"')
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }


def emf_metrics(output: str) -> list[tuple[str, dict[str, str]]]:
    """(metric name, its dimensions) for every CloudWatch EMF metric in printed output."""
    found: list[tuple[str, dict[str, str]]] = []
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = {name: str(document[name]) for names in directive["Dimensions"] for name in names}
            found.extend((metric["Name"], dimensions) for metric in directive["Metrics"])
    return found
