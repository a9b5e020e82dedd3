"""The event shapes AWS hands to Lambda, built the way API Gateway and SQS build them, plus a
Lambda context whose remaining time counts down for real."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from local.template import LOCAL_ACCOUNT, LOCAL_REGION


class LocalLambdaContext:
    def __init__(self, function_name: str, timeout_seconds: float = 30.0, memory_mb: int = 256) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def api_gateway_event(
    method: str,
    path: str,
    body: str | bytes | None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    resource: str | None = None,
    stage: str = "dev",
    api_key_id: str | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST (proxy integration) event. With `binary` (the API's BinaryMediaTypes
    match the request) the body is passed base64-encoded, as API Gateway does."""
    header_map = dict(headers or {})
    now = datetime.now(UTC)
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if binary and raw is not None:
        text: str | None = base64.b64encode(raw).decode("ascii")
    else:
        text = raw.decode("utf-8", errors="replace") if raw is not None else None
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": header_map,
        "multiValueHeaders": {name: [value] for name, value in header_map.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method.upper(),
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {
                "sourceIp": "127.0.0.1",
                "userAgent": header_map.get("user-agent", ""),
                "apiKeyId": api_key_id,
            },
        },
        "body": text,
        "isBase64Encoded": bool(binary and raw is not None),
    }


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of an SQS event, from a ReceiveMessage result."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", LOCAL_ACCOUNT),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": LOCAL_REGION,
    }


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {"Records": [sqs_record(message, queue_arn) for message in messages]}


def with_current_timestamp(event: dict[str, Any]) -> dict[str, Any]:
    """A sample API event whose JSON body has a `timestamp`, stamped with the current time: the
    samples in events/ are fixed files, and the relay refuses messages older than a week."""
    body = event.get("body")
    if not isinstance(body, str) or event.get("isBase64Encoded"):
        return event
    try:
        parsed = json.loads(body)
    except ValueError:
        return event
    if not isinstance(parsed, dict) or "timestamp" not in parsed:
        return event
    parsed["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event | {"body": json.dumps(parsed)}
