"""POST /sms/outbound: validate a campaign send, judge each recipient, and queue or hold each
accepted message once.

Everything that can make the request invalid is checked before anything is written (numbers, the
webhook URL, the segment limit), so a 422 never leaves a partial send behind. Then each recipient
passes the gate: consent (an opt-in with no later opt-out), then quiet hours (queued now, or held
until its window opens, with the instant in `sendAfter`). A dry run stops there and answers 200.

With an Idempotency-Key the decision runs once per key (per API key) for 24 hours: a repeat with
the same body gets the first answer back, byte for byte, and sends nothing; with another body it
is 409. Message ids derive from the key, so a request that failed half-way and is retried with
its key queues the same ids again, and the consumer sends each id once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from cxone_relay.platform.data.audit import AuditEvent, AuditTrail, rejected_request
from cxone_relay.platform.data.consent import ConsentLedger, ConsentStatus
from cxone_relay.platform.data.messages import (
    HeldMessages,
    MessageRecord,
    MessageStatus,
    MessageStatusStore,
    iso,
)
from cxone_relay.platform.errors import FieldProblem, InvalidFields, InvalidRequest
from cxone_relay.platform.idempotency import Idempotency
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.phone import InvalidPhoneNumber, normalise_e164
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.redaction import PhoneHasher, mask_phone
from cxone_relay.workflows.outbound_sms import errors
from cxone_relay.workflows.outbound_sms.models import (
    IntakeResult,
    MessageAnswer,
    OutboundAccepted,
    OutboundDryRun,
    OutboundSmsRequest,
    QueuedOutboundSms,
    RefusalAnswer,
    Verdict,
)
from cxone_relay.workflows.outbound_sms.quiet_hours import QuietHours
from cxone_relay.workflows.outbound_sms.segments import Segmentation, segment

WORKFLOW = "outbound-sms"


class GateVerdict(BaseModel):
    reasons: list[str]
    send_after: datetime | None = None
    held: bool = False


class SendGate:
    """Consent, then quiet hours: whether a campaign message may go to a number, and when."""

    def __init__(self, consent: ConsentLedger, quiet_hours: QuietHours) -> None:
        self._consent = consent
        self._quiet_hours = quiet_hours

    def check(self, phone: str, now: datetime) -> GateVerdict:
        reasons = []
        consent = self._consent.status(phone)
        if consent is None:
            reasons.append(errors.NO_CONSENT)
        elif consent is ConsentStatus.OPTED_OUT:
            reasons.append(errors.OPTED_OUT)
        window = self._quiet_hours.send_time(phone, now)
        if window.at is None:
            reasons.append(errors.NO_SEND_WINDOW if window.zones else errors.UNKNOWN_TIME_ZONE)
        return GateVerdict(reasons=reasons, send_after=window.at, held=window.held)


def new_message_id() -> str:
    return f"out-{uuid.uuid4().hex}"


class Submission(BaseModel):
    """One send as the idempotent step sees it: `key` and `body` decide a replay."""

    key: str
    body: dict[str, Any]
    numbers: list[str]
    sender: str
    text: str
    campaign_id: str
    webhook_url: str | None
    segments: int
    encoding: str
    characters: int
    correlation_id: str | None = None


class OutboundIntake:
    def __init__(
        self,
        gate: SendGate,
        statuses: MessageStatusStore,
        held: HeldMessages,
        publisher: QueuePublisher,
        audit: AuditTrail,
        hasher: PhoneHasher,
        idempotency: Idempotency,
        default_region: str,
        max_segments: int,
        allow_local_webhooks: bool,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_message_id,
    ) -> None:
        self._gate = gate
        self._statuses = statuses
        self._held = held
        self._publisher = publisher
        self._audit = audit
        self._hasher = hasher
        self._idempotency = idempotency
        self._region = default_region
        self._max_segments = max_segments
        self._allow_local = allow_local_webhooks
        self._clock = clock
        self._new_id = new_id
        self._submit_once = idempotency.once(self._submit, IntakeResult)

    def register(self, context: Any) -> None:
        self._idempotency.register(context)

    def accept(
        self,
        request: OutboundSmsRequest,
        *,
        idempotency_key: str | None = None,
        client: str | None = None,
        correlation_id: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(status, answer): 200 for a dry run, else 202. Raises InvalidFields naming every bad field.
        `client` scopes the Idempotency-Key (the API key's id); the correlation id defaults to the
        request's, as the logger has it."""
        correlation_id = correlation_id or logger.get_correlation_id()
        problems: list[FieldProblem] = []
        try:
            numbers, sender = self._numbers(request)
        except InvalidFields as invalid:
            problems.extend(invalid.problems)
            numbers, sender = [], ""
        if request.webhook_url is not None and (
            problem := webhook_url_problem(request.webhook_url, self._allow_local)
        ):
            problems.append(FieldProblem("webhookUrl", problem))
        segmentation = segment(request.text, request.smart_encoding)
        limit = self._max_segments if request.segmentation is None or request.segmentation.enabled else 1
        if segmentation.segments > limit:
            problems.append(
                FieldProblem(
                    "text",
                    f"needs {segmentation.segments} segments ({segmentation.encoding}), at most {limit}",
                )
            )
        if problems:
            raise InvalidFields(problems)
        if request.dry_run:
            result = IntakeResult(
                encoding=segmentation.encoding,
                segments=segmentation.segments,
                characters=segmentation.characters,
                verdicts=self._judge(numbers, lambda _: None),
            )
            return 200, render(result, numbers, dry_run=True)
        submission = self._submission(
            request, numbers, sender, segmentation, idempotency_key, client, correlation_id
        )
        result = self._submit_once(message=submission) if idempotency_key else self._submit(submission)
        return 202, render(result, numbers, dry_run=False)

    def _numbers(self, request: OutboundSmsRequest) -> tuple[list[str], str]:
        problems: list[FieldProblem] = []
        numbers: list[str] = []
        first_seen: dict[str, int] = {}
        for index, raw in enumerate(request.to):
            try:
                number = normalise_e164(raw, self._region)
            except InvalidPhoneNumber as exc:
                problems.append(FieldProblem(f"to.{index}", exc.reason))
                continue
            if number in first_seen:
                problems.append(FieldProblem(f"to.{index}", f"repeats to.{first_seen[number]}"))
            first_seen.setdefault(number, index)
            numbers.append(number)
        try:
            sender = normalise_e164(request.from_, self._region)
        except InvalidPhoneNumber as exc:
            problems.append(FieldProblem("from", exc.reason))
        if problems:
            raise InvalidFields(problems)
        return numbers, sender

    def _submission(
        self,
        request: OutboundSmsRequest,
        numbers: list[str],
        sender: str,
        segmentation: Segmentation,
        idempotency_key: str | None,
        client: str | None,
        correlation_id: str | None,
    ) -> Submission:
        return Submission(
            key=f"{client or 'anonymous'}:{idempotency_key}" if idempotency_key else "",
            body=request.model_dump(mode="json"),
            numbers=numbers,
            sender=sender,
            text=segmentation.text,
            campaign_id=request.campaign_id,
            webhook_url=request.webhook_url,
            segments=segmentation.segments,
            encoding=segmentation.encoding,
            characters=segmentation.characters,
            correlation_id=correlation_id,
        )

    def _judge(self, numbers: list[str], message_id: Callable[[int], str | None]) -> list[Verdict]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        verdicts = []
        for index, number in enumerate(numbers):
            gate = self._gate.check(number, now)
            if gate.reasons:
                verdicts.append(Verdict(recipient=index, status="refused", reasons=gate.reasons))
            elif gate.held and gate.send_after is not None:
                verdicts.append(
                    Verdict(
                        recipient=index,
                        message_id=message_id(index),
                        status="held",
                        send_after=iso(gate.send_after),
                    )
                )
            else:
                verdicts.append(Verdict(recipient=index, message_id=message_id(index), status="queued"))
        return verdicts

    def _submit(self, message: Submission) -> IntakeResult:
        """The send itself: status records first (the consumer reads them), then the queue or the
        held store, then the audit."""

        def message_id(index: int) -> str:
            if not message.key:
                return self._new_id()
            digest = hashlib.sha256(f"{message.key}#{index}".encode()).hexdigest()
            return f"out-{digest[:32]}"

        verdicts = self._judge(message.numbers, message_id)
        accepted_at = datetime.fromtimestamp(self._clock(), UTC)
        events = []
        for verdict in verdicts:
            number = message.numbers[verdict.recipient]
            if verdict.status == "refused":
                for reason in verdict.reasons:
                    count("OutboundRefused", reason=reason)
                events.append(
                    self._event(message, verdict, number, "refused", "refused", reasons=verdict.reasons)
                )
                continue
            assert verdict.message_id is not None
            queued = QueuedOutboundSms(
                id=verdict.message_id,
                to=number,
                sender=message.sender,
                text=message.text,
                campaign_id=message.campaign_id,
                segments=message.segments,
                encoding=message.encoding,
                webhook_url=message.webhook_url,
                accepted_at=accepted_at,
                correlation_id=message.correlation_id,
            )
            self._statuses.create(
                MessageRecord(
                    message_id=queued.id,
                    status=MessageStatus(verdict.status),
                    campaign_id=message.campaign_id,
                    recipient_hash=self._hasher.fingerprint(number),
                    recipient_masked=mask_phone(number),
                    status_at=iso(accepted_at),
                    segments=message.segments,
                    webhook_url=message.webhook_url,
                    send_after=verdict.send_after,
                )
            )
            if verdict.status == "held":
                assert verdict.send_after is not None
                self._held.hold(
                    queued.id, datetime.fromisoformat(verdict.send_after), queued.model_dump(mode="json")
                )
                count("OutboundHeld")
            else:
                self._publisher.publish(queued.model_dump(mode="json"), correlation_id=message.correlation_id)
                count("OutboundQueued")
            events.append(
                self._event(
                    message, verdict, number, verdict.status, "accepted", send_after=verdict.send_after
                )
            )
        self._record(events)
        logger.info(
            "outbound send accepted",
            extra={
                "campaign_id": message.campaign_id,
                "recipients": len(verdicts),
                "refused": sum(verdict.status == "refused" for verdict in verdicts),
                "segments": message.segments,
            },
        )
        return IntakeResult(
            encoding=message.encoding,
            segments=message.segments,
            characters=message.characters,
            verdicts=verdicts,
        )

    def _event(
        self, message: Submission, verdict: Verdict, number: str, action: str, outcome: str, **details: Any
    ) -> AuditEvent:
        return AuditEvent(
            WORKFLOW,
            verdict.message_id or f"campaign-{message.campaign_id}",
            action,
            outcome,
            reason=", ".join(verdict.reasons) or None,
            phone=number,
            details={
                "campaign_id": message.campaign_id,
                "segments": message.segments,
                "encoding": message.encoding,
                **{name: value for name, value in details.items() if value is not None},
            },
            correlation_id=message.correlation_id,
        )

    def audit_invalid(self, request: InvalidRequest) -> None:
        """A request refused before any recipient was judged: audited under the API request id with
        the fields that were wrong (not their values: they may be numbers)."""
        count("OutboundInvalid", reason=request.reason)
        self._record([rejected_request(WORKFLOW, request)])

    def _record(self, events: list[AuditEvent]) -> None:
        try:
            self._audit.record_many(events)
        except Exception:
            # The answer stands: the messages are queued or held, and the consumer audits each send.
            logger.exception("could not audit an outbound send")


def render(result: IntakeResult, numbers: list[str], *, dry_run: bool) -> dict[str, Any]:
    """The answer, numbers put back in from the request (the kept result has positions only)."""
    messages = [
        MessageAnswer(
            to=numbers[verdict.recipient],
            message_id=None if dry_run else verdict.message_id,
            status=verdict.status,
            send_after=verdict.send_after,
        )
        for verdict in result.verdicts
        if verdict.status != "refused"
    ]
    refused = [
        RefusalAnswer(to=numbers[verdict.recipient], reasons=verdict.reasons)
        for verdict in result.verdicts
        if verdict.status == "refused"
    ]
    answer: BaseModel
    if dry_run:
        answer = OutboundDryRun(
            dry_run=True,
            encoding=result.encoding,
            segments=result.segments,
            characters=result.characters,
            messages=messages,
            refused=refused,
        )
    else:
        answer = OutboundAccepted(
            status="queued" if messages else "refused",
            encoding=result.encoding,
            segments=result.segments,
            messages=messages,
            refused=refused,
        )
    return answer.model_dump(mode="json", by_alias=True, exclude_none=True)


def webhook_url_problem(url: str, allow_local: bool) -> str | None:
    """Why a webhookUrl cannot be called, or None. It must be https with a host, without
    credentials, and not aimed at this network (loopback, private or link-local addresses)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "is not a URL"
    if parts.scheme not in (("https", "http") if allow_local else ("https",)):
        return "must be an https URL"
    if not host or parts.username or parts.password:
        return "must name a host, without credentials"
    if allow_local:
        return None
    host = host.removesuffix(".")  # "localhost." and "127.0.0.1." resolve as the names without the dot
    if host == "localhost" or host.endswith(".localhost"):
        return "must not point at this network"
    address = _address(host)
    if address is not None and not address.is_global:
        return "must not point at this network"
    return None


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names, or None for a name. IPv4 is read as the resolver reads it, so the
    shorthand forms are caught too: 127.1, 0x7f000001, 2130706433 and 0177.0.0.1 all mean 127.0.0.1."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
