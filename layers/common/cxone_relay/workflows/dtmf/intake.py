"""POST /dtmf: validate a request and queue it for the consumer, which sends it to CXone.

Every request that reaches the function is a submission (DtmfSubmitted); one refused at
validation, by its shape or by the configured tone bounds, is a validation failure
(DtmfValidationFailed), audited with its problems and never queued, so it never reaches CXone.
The id in the answer is ours: the consumer sends each id once however often SQS delivers it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cxone_relay.platform.data.audit import AuditEvent, AuditTrail
from cxone_relay.platform.errors import InvalidRequest
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.workflows.dtmf.models import AcceptedResponse, DtmfSubmission, QueuedDtmf
from cxone_relay.workflows.dtmf.rules import ToneRules

WORKFLOW = "dtmf"


def new_request_id() -> str:
    return f"dtmf-{uuid.uuid4().hex}"


class DtmfIntake:
    def __init__(
        self,
        tones: ToneRules,
        audit: AuditTrail,
        publisher: QueuePublisher,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_request_id,
    ) -> None:
        self._tones = tones
        self._audit = audit
        self._publisher = publisher
        self._clock = clock
        self._new_id = new_id

    def accept(self, request: DtmfSubmission, correlation_id: str | None = None) -> AcceptedResponse:
        # Raises InvalidFields naming each tone out of bounds; the API layer reports it to
        # audit_invalid, like any other field the model refused.
        duration, spacing = self._tones.resolve(request.tone_duration_ms, request.tone_spacing_ms)
        message = QueuedDtmf(
            id=self._new_id(),
            interaction_id=request.interaction_id,
            digits=request.digits,
            timeout_ms=request.timeout_ms,
            sequence_matrix_key=request.sequence_matrix_key,
            node_transition_flag=request.node_transition_flag,
            tone_duration_ms=duration,
            tone_spacing_ms=spacing,
            accepted_at=datetime.fromtimestamp(self._clock(), UTC),
            correlation_id=correlation_id,
        )
        count("DtmfSubmitted")
        # Queued is accepted: an error after this point must not become a 5xx, or the client would
        # retry a request that is already on its way to the call.
        self._publisher.publish(message.model_dump(mode="json"), correlation_id=correlation_id)
        self._record(
            AuditEvent(
                WORKFLOW,
                message.id,
                "queued",
                "accepted",
                details={
                    "validation_result": "valid",
                    "interaction_id": message.interaction_id,
                    "sequence_matrix_key": message.sequence_matrix_key,
                    "digit_count": len(message.digits),
                    "timeout_ms": message.timeout_ms,
                },
                correlation_id=correlation_id,
            )
        )
        logger.info(
            "dtmf request queued",
            extra={"request_id": message.id, "interaction_id": message.interaction_id},
        )
        return AcceptedResponse(id=message.id)

    def audit_invalid(self, request: InvalidRequest) -> None:
        """A request refused at validation: counted as a submission and a validation failure, and
        audited under the API request id with the fields that were wrong (not their values)."""
        count("DtmfSubmitted")
        count("DtmfValidationFailed", reason=request.reason)
        details: dict[str, Any] = {
            "validation_result": "invalid",
            "fields": [{"field": p.field, "message": p.message} for p in request.problems],
        }
        self._record(
            AuditEvent(WORKFLOW, request.request_id, "rejected", "rejected", request.reason, None, details)
        )

    def _record(self, event: AuditEvent) -> None:
        try:
            self._audit.record(event)
        except Exception:
            # The answer stands whatever happens to its audit record: a refusal stays a 4xx, and
            # an accepted request is already queued (the consumer audits its outcome).
            logger.exception(
                "could not audit a dtmf request", extra={"subject": event.subject, "action": event.action}
            )
