"""Running an SQS batch: each record parsed into the workflow's message model and processed once
(idempotency) with partial-batch failure reporting, then an optional batch-level step (e.g. one
ticket upsert for the whole batch) whose failures are reported against the records they belong to.

What happens to a record that fails depends on whether trying again can help:
- it can (throttling, an outage, a configuration an operator can fix): the record is reported in
  batchItemFailures, SQS makes it visible again, and after maxReceiveCount it moves to the DLQ;
- it cannot (not the queued shape, or the upstream refused this very record): the consumer sends
  it to the DLQ at once, with the reason as message attributes, audits it and reports it done,
  instead of trying it maxReceiveCount times over half an hour.
Either way it is logged at WARNING or ERROR with its reason class and counted (RecordsFailed).
Nothing is acknowledged that did not complete or reach the DLQ.

The audit: each message gets one StageRecord for the batch, which processing, the batch-level
step and the DLQ path add their steps to, and every record is written once, after the batch
(one BatchWriteItem), however it ended. A message that idempotency answers without processing it
(it completed before, and its batch came back) gets a "replayed" step with the stored result, so
a batch whose audit never landed (the Lambda died, or the write failed and failed the batch) is
audited when it comes back.
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

from cxone_relay.platform.data.audit import AuditSubject, AuditTrail, StageAudit, StageRecord
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.idempotency import Idempotency
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.transport import TimeBudget

Message = TypeVar("Message", bound=BaseModel)
Outcome = TypeVar("Outcome", bound=BaseModel)


@dataclass(frozen=True)
class Processed(Generic[Message, Outcome]):
    """A record that completed: the message as queued, what processing decided, and the audit
    record of its stage (the batch-level step adds to it)."""

    message: Message
    outcome: Outcome
    audit: StageRecord


def refuses_the_record(error: Exception) -> bool:
    """Whether processing failed because of the record itself (so no retry can help)."""
    return isinstance(error, IdempotencyKeyError) or (
        isinstance(error, UpstreamError) and error.refuses_the_record
    )


class DeadLetters:
    """A consumer's own path to its queue's DLQ, for records that can never succeed."""

    def __init__(self, queue: QueuePublisher, workflow: str) -> None:
        self._queue = queue
        self.workflow = workflow

    def send(self, record: SQSRecord, audit: StageRecord, error: Exception) -> None:
        reason = _describe(error)
        self._queue.send_raw(
            record.body or "",
            {
                "failure_reason": reason,
                "failure_class": type(error).__name__,
                "source_message_id": record.message_id,
                "workflow": self.workflow,
            },
        )
        audit.add(
            "dead_lettered",
            "permanent_failure",
            reason=reason,
            sqs_message_id=record.message_id,
            error_class=type(error).__name__,
        )
        count("RecordsDeadLettered", reason=type(error).__name__)


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        # Field names and error types only: pydantic's messages quote the input, which may hold a number.
        problems = ", ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in error.errors()[:5])
        return f"not the queued message shape ({problems})"
    return str(error)[:500]


def _subject(record: SQSRecord) -> AuditSubject:
    """The record's own id when its body has a usable one, else its SQS message id."""
    try:
        parsed = json.loads(record.body or "")
    except ValueError:
        parsed = None
    given = parsed.get("id") if isinstance(parsed, dict) else None
    if isinstance(given, str) and 0 < len(given) <= 128 and given.isprintable():
        return AuditSubject(given)
    return AuditSubject(f"sqs-{record.message_id}")


Process = Callable[[Message, StageRecord, TimeBudget], Outcome]


class SqsConsumer(Generic[Message, Outcome]):
    def __init__(
        self,
        message_model: type[Message],
        outcome_model: type[Outcome],
        process: Process[Message, Outcome],
        idempotency: Idempotency,
        dead_letters: DeadLetters,
        audit: AuditTrail,
        audit_subject: Callable[[Message], AuditSubject],
        finalise: Callable[[dict[str, Processed[Message, Outcome]], TimeBudget], dict[str, Exception]]
        | None = None,
        reserve_seconds: float = 3.0,
    ) -> None:
        self._message_model = message_model
        self._process = process
        self._idempotency = idempotency
        self._dead_letters = dead_letters
        self._audit = audit
        self._audit_subject = audit_subject
        self._finalise = finalise
        self._reserve = reserve_seconds
        self._budget = TimeBudget.fixed(60)
        self._process_once = idempotency.once(self._run_process, outcome_model)
        self._ran = False

    def _run_process(self, message: Message, audit: StageRecord) -> Outcome:
        self._ran = True
        return self._process(message, audit, self._budget)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._budget = TimeBudget.from_context(context, reserve_seconds=self._reserve)
        self._idempotency.register(context)
        stage = StageAudit(self._audit, self._dead_letters.workflow)
        try:
            return self._handle(event, context, stage)
        finally:
            try:
                stage.write()
            except Exception:
                # Raised, so the whole batch comes back: what completed is then replayed from
                # idempotency and audited as replayed (its stored result), rather than left unaudited.
                logger.exception("the batch's audit records were not written; failing the batch")
                raise

    def _handle(self, event: dict[str, Any], context: Any, stage: StageAudit) -> dict[str, Any]:
        completed: dict[str, Processed[Message, Outcome]] = {}
        records: dict[str, SQSRecord] = {}

        def handle_record(record: SQSRecord) -> None:
            records[record.message_id] = record
            try:
                message = self._message_model.model_validate(json.loads(record.body or ""))
            except (ValueError, ValidationError) as exc:
                # Not the queued shape: no later attempt can succeed.
                self._fail(record, stage.of(_subject(record)), exc, permanent=True)
                return
            audit = stage.of(self._audit_subject(message))
            self._ran = False
            try:
                outcome = self._process_once(message=message, audit=audit)
            except Exception as exc:
                self._fail(record, audit, exc, permanent=refuses_the_record(exc))
                return
            if not self._ran:
                audit.add("replayed", "ok", result=outcome.model_dump(mode="json", exclude_none=True))
            completed[record.message_id] = Processed(message, outcome, audit)

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        with processor(event.get("Records", []), handle_record, lambda_context=context):
            processor.process()
        response: dict[str, Any] = dict(processor.response())
        failures = list(response.get("batchItemFailures", []))
        if self._finalise is not None and completed:
            for message_id, error in sorted(self._finalise(completed, self._budget).items()):
                try:
                    self._fail(
                        records[message_id],
                        completed[message_id].audit,
                        error,
                        permanent=refuses_the_record(error),
                    )
                except Exception:
                    failures.append({"itemIdentifier": message_id})
        response["batchItemFailures"] = failures
        return response

    def _fail(self, record: SQSRecord, audit: StageRecord, error: Exception, *, permanent: bool) -> None:
        """Log and count the failure; dead-letter what can never succeed, else raise so the record
        is reported failed and comes back."""
        count("RecordsFailed", reason=type(error).__name__)
        report = logger.error if permanent or not getattr(error, "retryable", False) else logger.warning
        report(
            "queue record failed",
            extra={
                "sqs_message_id": record.message_id,
                "reason_class": type(error).__name__,
                "reason": _describe(error),
                "dead_lettered": permanent,
            },
        )
        if not permanent:
            raise error
        self._dead_letters.send(record, audit, error)
