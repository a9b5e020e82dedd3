"""Who the inbound workflow's audit records are about: the message id, its sender (hashed and
masked in the record) and the API request's correlation id."""

from __future__ import annotations

from cxone_relay.platform.data.audit import AuditSubject
from cxone_relay.workflows.inbound_sms.models import QueuedInboundSms

WORKFLOW = "inbound-sms"


def audit_subject(message: QueuedInboundSms) -> AuditSubject:
    return AuditSubject(message.id, message.sender, message.correlation_id)
