"""Feeds SQS batches to a consumer the way Lambda's event source mapping does.

Receives up to the batch size (waiting up to the batching window), invokes the handler, deletes
what succeeded, and returns failed records to the queue. With ReportBatchItemFailures only the
reported records fail; without it (or if the handler raises) the whole batch does. The queue's
own redrive policy moves a record to its DLQ after maxReceiveCount receives, as in AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.events import sqs_event
from local.template import QueueSource

Invoke = Callable[[dict[str, Any]], Any]


@dataclass
class DeliveryResult:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)
    error: str | None = None


class QueuePoller:
    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        queue_arn: str,
        source: QueueSource,
        invoke: Invoke,
        retry_delay_seconds: int = 0,
        batching_window_seconds: float | None = None,
        long_poll_seconds: int = 0,
    ) -> None:
        self._sqs = sqs_client
        self.queue_url = queue_url
        self._queue_arn = queue_arn
        self.source = source
        self._invoke = invoke
        # Lambda leaves failed records invisible for the visibility timeout; locally a short
        # delay keeps demos and tests quick while still letting other records go first.
        self._retry_delay = retry_delay_seconds
        # A running stack long-polls for the first record, as Lambda's pollers do: moto answers as
        # soon as one arrives, and an idle queue costs a receive a second, not twenty. Tests that
        # drain a queue step by step keep 0, so an empty queue answers at once.
        self._long_poll = long_poll_seconds
        self._window = (
            source.batching_window_seconds if batching_window_seconds is None else batching_window_seconds
        )

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self._window
        while len(messages) < self.source.batch_size:
            batch = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0 if messages else self._long_poll,
            ).get("Messages", [])
            messages.extend(batch)
            if not batch and (messages or time.monotonic() >= deadline):
                break
            if not batch:
                time.sleep(0.05)
        return messages

    def deliver_once(self) -> DeliveryResult:
        messages = self._receive()
        result = DeliveryResult(received=len(messages))
        if not messages:
            return result
        by_id = {message["MessageId"]: message for message in messages}
        try:
            response = self._invoke(sqs_event(messages, self._queue_arn))
            failed = self._failed_ids(response, by_id)
        except Exception as exc:  # the whole batch failed, as when a Lambda invocation errors
            failed = set(by_id)
            result.error = f"{type(exc).__name__}: {exc}"
        for message_id, message in by_id.items():
            if message_id in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self._retry_delay,
                )
            else:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        result.failed_ids = sorted(failed)
        result.failed = len(failed)
        result.succeeded = len(by_id) - len(failed)
        return result

    def _failed_ids(self, response: Any, by_id: dict[str, Any]) -> set[str]:
        if not self.source.report_batch_item_failures:
            return set()
        failures = (response or {}).get("batchItemFailures", []) if isinstance(response, dict) else []
        failed = {str(item.get("itemIdentifier")) for item in failures}
        unknown = failed - set(by_id)
        if unknown or any(not item.get("itemIdentifier") for item in failures):
            # Lambda treats a malformed failure report as a failure of the whole batch.
            return set(by_id)
        return failed

    def drain(self, max_rounds: int = 50) -> list[DeliveryResult]:
        """Deliver until the queue has nothing visible (bounded, for tests and the demo)."""
        results = []
        for _ in range(max_rounds):
            result = self.deliver_once()
            if result.received == 0:
                break
            results.append(result)
        return results
