"""Delivery status, the API side (POST /sms/status): the SMS channel's signed reports are checked
(signatures.py, before the body is read), validated and queued for the status consumer
(status.py). This module stays light: the API function never loads the CXone client."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from cxone_relay.platform.data.audit import AuditTrail, rejected_request
from cxone_relay.platform.data.messages import iso
from cxone_relay.platform.errors import FieldProblem, InvalidFields, InvalidRequest
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.phone import InvalidPhoneNumber, normalise_e164
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.workflows.outbound_sms.models import DeliveryStatusRequest, QueuedStatus, StatusAccepted

WORKFLOW = "delivery-status"


class DeliveryIntake:
    def __init__(
        self,
        publisher: QueuePublisher,
        audit: AuditTrail,
        default_region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publisher = publisher
        self._audit = audit
        self._region = default_region
        self._clock = clock

    def accept(self, report: DeliveryStatusRequest, correlation_id: str | None = None) -> StatusAccepted:
        try:
            to = normalise_e164(report.to, self._region)
        except InvalidPhoneNumber as exc:
            raise InvalidFields([FieldProblem("to", exc.reason)]) from None
        moment = iso(report.timestamp)
        queued = QueuedStatus(
            id=f"{report.message_id}:{report.status}:{moment}",
            message_id=report.message_id,
            status=report.status,
            to=to,
            timestamp=report.timestamp,
            error=report.error,
            received_at=datetime.fromtimestamp(self._clock(), UTC),
            correlation_id=correlation_id,
        )
        self._publisher.publish(queued.model_dump(mode="json"), correlation_id=correlation_id)
        count("DeliveryReportsReceived", status=report.status)
        return StatusAccepted(message_id=report.message_id)

    def audit_invalid(self, request: InvalidRequest) -> None:
        """A signed report whose body is invalid: the channel has a bug worth seeing."""
        count("DeliveryReportsInvalid", reason=request.reason)
        try:
            self._audit.record(rejected_request(WORKFLOW, request))
        except Exception:
            logger.exception("could not audit a refused delivery report")
