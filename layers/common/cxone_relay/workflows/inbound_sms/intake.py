"""POST /sms/inbound: decide whether to accept a message, and queue it.

Order matters: keywords first (a STOP must never be lost to a consent or spam rule), then
consent, then moderation. Every refusal is audited with its reason.

A channel retrying the webhook gets the first answer back, and the message is not queued again:
the "queued" audit record, which must be written anyway, is the memory of it (one read, instead
of an idempotency record's put and update). It holds a keyed hash of the sender, recipient and
text, so the same id with different content is a 409, not a retry. Two attempts racing each other
can both queue the message before either record lands; the consumer processes each id once, so
that costs a queue message, never a second effect (SQS standard queues deliver at least once
anyway).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cxone_relay.platform.data.audit import AuditEvent, AuditTrail
from cxone_relay.platform.errors import Conflict, FieldProblem, InvalidFields, InvalidRequest, Refused
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.phone import InvalidPhoneNumber, normalise_e164
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.workflows.inbound_sms.audit import WORKFLOW
from cxone_relay.workflows.inbound_sms.errors import NoConsent, Spam
from cxone_relay.workflows.inbound_sms.keywords import KeywordRules
from cxone_relay.workflows.inbound_sms.models import (
    MESSAGE_ID_PATTERN,
    AcceptedResponse,
    InboundSmsRequest,
    QueuedInboundSms,
)
from cxone_relay.workflows.inbound_sms.moderation import SpamRules

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
        hasher: PhoneHasher,
        max_age_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keywords = keywords
        self._spam = spam
        self._audit = audit
        self._publisher = publisher
        self._region = default_region
        self._hasher = hasher
        self._clock = clock
        self._max_age_seconds = max_age_seconds

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
        return self._enqueue_once(message)

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

    def _enqueue_once(self, message: QueuedInboundSms) -> AcceptedResponse:
        content = self._hasher.digest(message.sender, message.recipient, message.body)
        earlier = self._audit.recorded(WORKFLOW, message.id, "queued")
        if earlier:
            # A record without a hash predates them: it cannot be compared, so it is taken as a retry.
            if all(record.get("content_hash") not in (None, content) for record in earlier):
                raise Conflict("this id was already used for a different message")
            details = earlier[0].get("details") or {}
            return AcceptedResponse(id=message.id, keyword=details.get("keyword"))
        # Queued first, then recorded: a record written for a message that never reached the queue
        # would answer the channel's retry with a 202 for a message that is lost.
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
                content_hash=content,
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
