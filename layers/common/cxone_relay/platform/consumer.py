"""Running an SQS batch: each record parsed into the workflow's message model and processed once
(idempotency) with partial-batch failure reporting, then an optional batch-level step (e.g. one
ticket upsert for the whole batch) whose failures are reported against the records they belong to.

A record that raises is reported in batchItemFailures: SQS makes it visible again, and after
the queue's maxReceiveCount it moves to the DLQ. Nothing is acknowledged that did not complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyKeyError
from pydantic import BaseModel, ValidationError

from cxone_relay.platform.idempotency import Idempotency
from cxone_relay.platform.transport import TimeBudget

Message = TypeVar("Message", bound=BaseModel)
Outcome = TypeVar("Outcome", bound=BaseModel)


@dataclass(frozen=True)
class Processed(Generic[Message, Outcome]):
    """A record that completed: the message as queued and what processing decided."""

    message: Message
    outcome: Outcome


@dataclass(frozen=True)
class MalformedRecord:
    """A queue record that can never be processed (not JSON, no id, not the queued model)."""

    sqs_message_id: str
    body: str
    error: Exception


class SqsConsumer(Generic[Message, Outcome]):
    def __init__(
        self,
        message_model: type[Message],
        outcome_model: type[Outcome],
        process: Callable[[Message, TimeBudget], Outcome],
        idempotency: Idempotency,
        finalise: Callable[[dict[str, Processed[Message, Outcome]], TimeBudget], set[str]] | None = None,
        on_malformed: Callable[[MalformedRecord], None] | None = None,
        reserve_seconds: float = 3.0,
    ) -> None:
        self._message_model = message_model
        self._process = process
        self._idempotency = idempotency
        self._finalise = finalise
        self._on_malformed = on_malformed
        self._reserve = reserve_seconds
        self._budget = TimeBudget.fixed(60)
        self._process_once = idempotency.once(self._run_process, outcome_model)

    def _run_process(self, message: Message) -> Outcome:
        return self._process(message, self._budget)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._budget = TimeBudget.from_context(context, reserve_seconds=self._reserve)
        self._idempotency.register(context)
        completed: dict[str, Processed[Message, Outcome]] = {}

        def handle_record(record: SQSRecord) -> None:
            try:
                message = self._message_model.model_validate(json.loads(record.body or ""))
            except (ValueError, ValidationError) as exc:
                # The record's own shape is wrong; an upstream's bad answer is an UpstreamError
                # and is audited by the workflow instead.
                self._malformed(record, exc)
                raise
            try:
                outcome = self._process_once(message=message)
            except IdempotencyKeyError as exc:
                self._malformed(record, exc)
                raise
            completed[record.message_id] = Processed(message, outcome)

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        with processor(event.get("Records", []), handle_record, lambda_context=context):
            processor.process()
        response: dict[str, Any] = dict(processor.response())
        failures = list(response.get("batchItemFailures", []))
        if self._finalise is not None and completed:
            failed = self._finalise(completed, self._budget)
            failures.extend({"itemIdentifier": message_id} for message_id in sorted(failed))
        response["batchItemFailures"] = failures
        return response

    def _malformed(self, record: SQSRecord, error: Exception) -> None:
        if self._on_malformed is not None:
            self._on_malformed(MalformedRecord(record.message_id, record.body or "", error))
