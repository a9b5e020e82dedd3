"""Running an SQS batch: each record processed once (idempotency) with partial-batch failure
reporting, then an optional batch-level step (e.g. one ticket upsert for the whole batch) whose
failures are reported against the records they belong to.

A record that raises is reported in batchItemFailures: SQS makes it visible again, and after
the queue's maxReceiveCount it moves to the DLQ. Nothing is acknowledged that did not complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyKeyError
from pydantic import ValidationError

from cxone_relay.idempotency import Idempotency
from cxone_relay.transport import TimeBudget

RecordStep = Callable[[dict[str, Any], TimeBudget], dict[str, Any]]
BatchStep = Callable[[dict[str, dict[str, Any]], TimeBudget], set[str]]
# Told about a record that can never succeed (not JSON, no id, not the expected shape), so it is
# audited before it goes its way to the DLQ.
MalformedHook = Callable[[str, str, Exception], None]


class SqsConsumer:
    def __init__(
        self,
        process: RecordStep,
        idempotency: Idempotency,
        finalise: BatchStep | None = None,
        on_malformed: MalformedHook | None = None,
        reserve_seconds: float = 3.0,
    ) -> None:
        self._process = process
        self._idempotency = idempotency
        self._finalise = finalise
        self._on_malformed = on_malformed
        self._reserve = reserve_seconds
        self._budget = TimeBudget.fixed(60)
        self._process_once = idempotency(self._run_process)

    def _run_process(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._process(message, self._budget)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._budget = TimeBudget.from_context(context, reserve_seconds=self._reserve)
        self._idempotency.register(context)
        results: dict[str, dict[str, Any]] = {}

        def handle_record(record: SQSRecord) -> None:
            try:
                body = json.loads(record.body or "")
            except ValueError as exc:
                self._malformed(record, exc)
                raise
            try:
                results[record.message_id] = self._process_once(message=body)
            except (ValidationError, IdempotencyKeyError) as exc:
                # The record's own shape is wrong (no id, not the queued model); an upstream's
                # bad answer is an UpstreamError and is audited by the workflow instead.
                self._malformed(record, exc)
                raise

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        with processor(event.get("Records", []), handle_record, lambda_context=context):
            processor.process()
        response: dict[str, Any] = dict(processor.response())
        failures = list(response.get("batchItemFailures", []))
        if self._finalise is not None and results:
            failed = self._finalise(results, self._budget)
            failures.extend({"itemIdentifier": message_id} for message_id in sorted(failed))
        response["batchItemFailures"] = failures
        return response

    def _malformed(self, record: SQSRecord, error: Exception) -> None:
        if self._on_malformed is not None:
            self._on_malformed(record.message_id, record.body or "", error)
