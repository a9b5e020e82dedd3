"""Putting work on SQS. Bodies are JSON; the correlation id travels as a message attribute so
the consumer's logs join the API request's."""

from __future__ import annotations

import json
from typing import Any


class QueuePublisher:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self.queue_url = queue_url

    def publish(self, body: dict[str, Any], correlation_id: str | None = None) -> str:
        attributes = {"correlation_id": correlation_id} if correlation_id else {}
        return self.send_raw(json.dumps(body, default=str), attributes)

    def send_raw(self, body: str, attributes: dict[str, str]) -> str:
        """Send a body as it is (a record on its way to a DLQ keeps its exact bytes)."""
        response = self._sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value[:1024]}
                for name, value in attributes.items()
                if value
            },
        )
        return str(response["MessageId"])
