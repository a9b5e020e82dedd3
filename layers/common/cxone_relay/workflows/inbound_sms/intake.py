"""POST /sms/inbound: decide whether to accept a message, and queue it exactly once.

Order matters: keywords first (a STOP must never be lost to a consent or spam rule), then
consent, then moderation. Every refusal is audited with its reason; an accepted message is
queued once per id however often the channel retries the webhook.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cxone_relay.platform.data.audit import AuditEvent, AuditTrail
from cxone_relay.platform.errors import FieldProblem, InvalidFields, InvalidRequest, Refused
from cxone_relay.platform.idempotency import Idempotency
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.phone import InvalidPhoneNumber, normalise_e164
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.workflows.inbound_sms.errors import NoConsent, Spam
from cxone_relay.workflows.inbound_sms.keywords import KeywordRules
from cxone_relay.workflows.inbound_sms.models import (
    MESSAGE_ID_PATTERN,
    AcceptedResponse,
    InboundSmsRequest,
    QueuedInboundSms,
)
from cxone_relay.workflows.inbound_sms.moderation import SpamRules

WORKFLOW = "inbound-sms"
# Consent changes are ordered by the channel's timestamp, so one from the future would outrank
# every real change after it; a few minutes cover clock skew between the channel and us.
MAX_CLOCK_SKEW_SECONDS = 300


class InboundIntake:
    def __init__(
        self,
        keywords: KeywordRules,
        spam: SpamRules,
        audit: AuditTrail,
        publisher: QueuePublisher,
        default_region: str,
        idempotency: Idempotency,
        max_age_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keywords = keywords
        self._spam = spam
        self._audit = audit
        self._publisher = publisher
        self._region = default_region
        self._clock = clock
        self._max_age_seconds = max_age_seconds
        self._idempotency = idempotency
        # A repeated id gets the first answer back instead of being queued again.
        self._enqueue_once = idempotency.once(self._enqueue, AcceptedResponse)

    def register(self, context: Any) -> None:
        """Tie in-progress idempotency records to the invocation that owns them."""
        self._idempotency.register(context)

    def accept(self, request: InboundSmsRequest, correlation_id: str | None = None) -> AcceptedResponse:
        sender, recipient = self._numbers(request)
        self._check_age(request.timestamp)
        # Keywords first: a STOP, START or HELP needs no consent flag and passes no spam rule.
        keyword = self._keywords.classify(request.body)
        if keyword is None:
            if request.opt_in is None:
                raise InvalidFields([FieldProblem("opt_in", "Field required")])
            if not request.opt_in:
                self._refuse(request.id, sender, NoConsent(), correlation_id)
            verdict = self._spam.check(request.body)
            if verdict is not None:
                self._refuse(request.id, sender, Spam(verdict.rule), correlation_id)
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
        return self._enqueue_once(message=message)

    def _check_age(self, timestamp: datetime) -> None:
        now = self._clock()
        if timestamp.timestamp() > now + MAX_CLOCK_SKEW_SECONDS:
            raise InvalidFields([FieldProblem("timestamp", "is in the future")])
        if timestamp.timestamp() < now - self._max_age_seconds:
            # Stale messages would reorder consent history and reach agents long after they matter.
            raise InvalidFields([FieldProblem("timestamp", f"is older than {self._max_age_seconds} seconds")])

    def _numbers(self, request: InboundSmsRequest) -> tuple[str, str]:
        problems, numbers = [], []
        for field_name, raw in (("from", request.from_), ("to", request.to)):
            try:
                numbers.append(normalise_e164(raw, self._region))
            except InvalidPhoneNumber as exc:
                problems.append(FieldProblem(field_name, exc.reason))
        if problems:
            raise InvalidFields(problems)
        return numbers[0], numbers[1]

    def _refuse(self, message_id: str, sender: str, refusal: Refused, correlation_id: str | None) -> None:
        self._record_rejection(message_id, refusal.reason, dict(refusal.details), sender, correlation_id)
        logger.info(
            "inbound message rejected",
            extra={"message_id": message_id, "reason": refusal.reason, **refusal.details},
        )
        raise refusal

    def _enqueue(self, message: QueuedInboundSms) -> AcceptedResponse:
        self._publisher.publish(message.model_dump(mode="json"), correlation_id=message.correlation_id)
        self._audit.record(
            AuditEvent(
                workflow=WORKFLOW,
                subject=message.id,
                action="queued",
                outcome="accepted",
                phone=message.sender,
                details={"keyword": message.keyword} if message.keyword else {},
                correlation_id=message.correlation_id,
            )
        )
        count("MessagesIngested")
        return AcceptedResponse(id=message.id, keyword=message.keyword)

    def audit_invalid(self, request: InvalidRequest) -> None:
        """Requests refused at validation are audited too (no number: it may be what was invalid),
        under the message id when the body has a usable one, else the API request id."""
        given = request.body.get("id") if request.body is not None else None
        # Only an id that passed its own pattern may become a key (not one with a NUL in it).
        subject = (
            given
            if isinstance(given, str) and re.fullmatch(MESSAGE_ID_PATTERN, given)
            else request.request_id
        )
        problems = {"fields": [str(problem) for problem in request.problems]}
        self._record_rejection(subject, request.reason, problems)

    def _record_rejection(
        self,
        subject: str,
        reason: str,
        details: dict[str, Any],
        phone: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        count("MessagesRejected", reason=reason)
        event = AuditEvent(WORKFLOW, subject, "rejected", "rejected", reason, phone, details, correlation_id)
        try:
            self._audit.record(event)
        except Exception:
            # The refusal stands whatever happens to its audit record; a 5xx here would invite the
            # channel to retry a request that will be refused again.
            logger.exception(
                "could not audit a refused message", extra={"subject": subject, "reason": reason}
            )
