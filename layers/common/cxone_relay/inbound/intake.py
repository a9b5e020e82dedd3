"""POST /sms/inbound: decide whether to accept a message, and queue it exactly once.

Order matters: keywords first (a STOP must never be lost to a consent or spam rule), then
consent, then moderation. Every refusal is audited with its reason; an accepted message is
queued once per id however often the channel retries the webhook.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cxone_relay.api import FieldInvalid, FieldProblem, RequestRejected
from cxone_relay.audit import AuditEvent, AuditWriter
from cxone_relay.inbound.keywords import KeywordRules
from cxone_relay.inbound.models import AcceptedResponse, InboundSmsRequest, QueuedInboundSms
from cxone_relay.inbound.moderation import SpamRules
from cxone_relay.observability import count, logger
from cxone_relay.phone import InvalidPhoneNumber, normalise_e164
from cxone_relay.queueing import QueuePublisher

WORKFLOW = "inbound-sms"
# Consent changes are ordered by the channel's timestamp, so one from the future would outrank
# every real change after it; a few minutes cover clock skew between the channel and us.
MAX_CLOCK_SKEW_SECONDS = 300

# Wraps the enqueue step so a repeated id returns the first answer instead of queueing again.
IdempotentWrapper = Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]


class InboundIntake:
    def __init__(
        self,
        keywords: KeywordRules,
        spam: SpamRules,
        audit: AuditWriter,
        publisher: QueuePublisher,
        default_region: str,
        idempotent: IdempotentWrapper,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keywords = keywords
        self._spam = spam
        self._audit = audit
        self._publisher = publisher
        self._region = default_region
        self._clock = clock
        self._enqueue_once = idempotent(self._enqueue)

    def accept(self, request: InboundSmsRequest, correlation_id: str | None = None) -> AcceptedResponse:
        sender, recipient = self._numbers(request)
        if request.timestamp.timestamp() > self._clock() + MAX_CLOCK_SKEW_SECONDS:
            raise FieldInvalid([FieldProblem("timestamp", "is in the future")])
        keyword = self._keywords.classify(request.body)
        if keyword is None:
            if not request.opt_in:
                self._reject(request.id, sender, "no consent", correlation_id)
            verdict = self._spam.check(request.body)
            if verdict is not None:
                self._reject(request.id, sender, verdict.reason, correlation_id, rule=verdict.rule)
        message = QueuedInboundSms(
            id=request.id,
            sender=sender,
            recipient=recipient,
            body=request.body,
            opt_in=request.opt_in,
            timestamp=request.timestamp,
            keyword=keyword.value if keyword else None,
            received_at=datetime.fromtimestamp(self._clock(), UTC),
            correlation_id=correlation_id,
        )
        result = self._enqueue_once(message=message.model_dump(mode="json"))
        return AcceptedResponse.model_validate(result)

    def _numbers(self, request: InboundSmsRequest) -> tuple[str, str]:
        problems, numbers = [], []
        for field_name, raw in (("from", request.from_), ("to", request.to)):
            try:
                numbers.append(normalise_e164(raw, self._region))
            except InvalidPhoneNumber as exc:
                problems.append(FieldProblem(field_name, exc.reason))
        if problems:
            raise FieldInvalid(problems)
        return numbers[0], numbers[1]

    def _reject(
        self, message_id: str, sender: str, reason: str, correlation_id: str | None, rule: str | None = None
    ) -> None:
        self._record_rejection(message_id, reason, {"rule": rule} if rule else {}, sender, correlation_id)
        logger.info(
            "inbound message rejected", extra={"message_id": message_id, "reason": reason, "rule": rule}
        )
        raise RequestRejected(reason, extra={"rule": rule} if rule else {})

    def _enqueue(self, message: dict[str, Any]) -> dict[str, Any]:
        self._publisher.publish(message, correlation_id=message.get("correlation_id"))
        self._audit.record(
            AuditEvent(
                workflow=WORKFLOW,
                subject=message["id"],
                action="queued",
                outcome="accepted",
                phone=message["sender"],
                details={"keyword": message["keyword"]} if message["keyword"] else {},
                correlation_id=message.get("correlation_id"),
            )
        )
        count("MessagesIngested")
        return AcceptedResponse(id=message["id"], keyword=message["keyword"]).model_dump(exclude_none=True)

    def audit_invalid(self, subject: str, reason: str, problems: list[FieldProblem]) -> None:
        """Requests refused at validation are audited too (no number: it may be what was invalid)."""
        self._record_rejection(subject, reason, {"fields": [f"{p.field}: {p.message}" for p in problems]})

    def _record_rejection(
        self,
        subject: str,
        reason: str,
        details: dict[str, Any],
        phone: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self._audit.record(
            AuditEvent(
                workflow=WORKFLOW,
                subject=subject,
                action="rejected",
                outcome="rejected",
                reason=reason,
                phone=phone,
                details=details,
                correlation_id=correlation_id,
            )
        )
        count("MessagesRejected", reason=reason)
