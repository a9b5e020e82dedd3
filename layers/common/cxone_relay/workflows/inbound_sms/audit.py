"""The inbound workflow's audit records for one message, gathered while it is processed and
written together (one batched write, however the processing ends)."""

from __future__ import annotations

from typing import Any

from cxone_relay.platform.data.audit import AuditEvent
from cxone_relay.workflows.inbound_sms.models import QueuedInboundSms

WORKFLOW = "inbound-sms"


class MessageAudit:
    def __init__(self, message: QueuedInboundSms) -> None:
        self._message = message
        self.events: list[AuditEvent] = []

    def add(self, action: str, outcome: str, reason: str | None = None, **details: Any) -> None:
        self.events.append(
            AuditEvent(
                workflow=WORKFLOW,
                subject=self._message.id,
                action=action,
                outcome=outcome,
                reason=reason,
                phone=self._message.sender,
                details=details,
                correlation_id=self._message.correlation_id,
            )
        )
