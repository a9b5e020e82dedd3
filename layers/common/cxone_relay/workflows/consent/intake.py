"""The consent API: opt-outs from the web, the IVR and agents, opt-ins with their evidence, and a
number's consent as agents and auditors look it up. Never calls CXone.

- POST /opt-out: the number is normalised (the body's region, else the configured default),
  then queued for DNC sync and recorded in the consent ledger straight away, so an outbound
  consent check refuses the number from this moment, not from when DNC sync is done. Queued
  first: if the ledger write then fails the caller gets a 503 and retries, and the consumer
  records the opt-out from the queued message anyway. A repeated request is harmless: the
  consumer sends a number to each environment once.
- POST /opt-in: recorded in the ledger with its evidence. The ledger orders changes by their
  time, so an opt-in never outranks a newer opt-out.
- GET /consent/{phone}: status, history and the environments whose DNC group has the number,
  with the number masked.

Bad input is refused before anything is written, and audited (without a number: it may be what
was wrong). Every accepted request is audited under its API request id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import unquote

from cxone_relay.platform.data.audit import AuditEvent, AuditTrail, rejected_request
from cxone_relay.platform.data.consent import ConsentChange, ConsentLedger, ConsentStatus
from cxone_relay.platform.data.dnc import DncSyncStore
from cxone_relay.platform.errors import FieldProblem, InvalidFields, InvalidRequest
from cxone_relay.platform.observability import count, logger
from cxone_relay.platform.phone import InvalidPhoneNumber, UnknownRegion, normalise_e164, normalise_region
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.redaction import mask_phone
from cxone_relay.workflows.consent.models import (
    ConsentView,
    DncEnvironmentState,
    HistoryEntry,
    OptInRecorded,
    OptInRequest,
    OptOutQueued,
    OptOutRequest,
)

WORKFLOW = "consent"


class ConsentIntake:
    def __init__(
        self,
        ledger: ConsentLedger,
        syncs: DncSyncStore,
        audit: AuditTrail,
        opt_outs: QueuePublisher,
        default_region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._syncs = syncs
        self._audit = audit
        self._opt_outs = opt_outs
        self._region = default_region
        self._clock = clock

    def opt_out(self, request: OptOutRequest, reference: str | None = None) -> OptOutQueued:
        phone = self._number(request.phone, request.region)
        reference = reference or str(uuid.uuid4())
        now = self._now()
        self._opt_outs.publish(
            {"phone": phone, "source": request.source, "reference": reference, "requested_at": _text(now)},
            correlation_id=reference,
        )
        self._ledger.record(ConsentChange(phone, ConsentStatus.OPTED_OUT, request.source, reference, now))
        self._record(
            reference, "opt_out_queued", "accepted", phone, source=request.source, requested_at=_text(now)
        )
        count("ConsentRequests", action="opt_out", source=request.source)
        return OptOutQueued(phone=phone)

    def opt_in(self, request: OptInRequest, reference: str | None = None) -> OptInRecorded:
        phone = self._number(request.phone, request.region)
        reference = reference or str(uuid.uuid4())
        now = self._now()
        change = ConsentChange(
            phone, ConsentStatus.OPTED_IN, request.source, reference, now, request.evidence
        )
        if self._ledger.record(change):
            consent = ConsentStatus.OPTED_IN
        else:
            # A change timed after this one stands (clocks between containers differ a little).
            consent = self._ledger.status(phone) or ConsentStatus.OPTED_IN
        self._record(
            reference,
            "opt_in_recorded",
            "accepted" if consent is ConsentStatus.OPTED_IN else "superseded",
            phone,
            source=request.source,
            requested_at=_text(now),
            evidence=request.evidence,
        )
        count("ConsentRequests", action="opt_in", source=request.source)
        return OptInRecorded(phone=phone, consent=consent.value)

    def lookup(self, phone_text: str, region: str | None = None) -> ConsentView:
        # API Gateway may pass the path parameter still percent-encoded (%2B for a +).
        phone = self._number(unquote(phone_text), region)
        current = self._ledger.current(phone)
        return ConsentView(
            phone=mask_phone(phone),
            status=current.status.value if current else "unknown",
            updated_at=current.updated_at if current else None,
            history=[
                HistoryEntry(
                    status=entry.status.value,
                    source=entry.source,
                    occurred_at=entry.occurred_at,
                    reference=entry.reference,
                    evidence=entry.evidence,
                )
                for entry in self._ledger.history(phone)
            ],
            dnc=[
                DncEnvironmentState(
                    environment=sync.environment, group_id=sync.group_id, applied_at=_text(sync.applied_at)
                )
                for sync in self._syncs.of_number(phone)
            ],
        )

    def audit_invalid(self, request: InvalidRequest) -> None:
        """Requests refused at validation are audited under their API request id, without the
        number (it may be what was invalid)."""
        count("ConsentRequestsRejected", reason=request.reason)
        logger.info("consent request rejected", extra={"reason": request.reason})
        # Names with the reasons here: a consent reason says what is wrong with a number, not what it is.
        fields = [str(problem) for problem in request.problems]
        self._audit.record(rejected_request(WORKFLOW, request, fields, correlation_id=request.request_id))

    def _number(self, raw: str, region: str | None) -> str:
        try:
            default_region = self._region if region is None else normalise_region(region)
        except UnknownRegion as exc:
            raise InvalidFields([FieldProblem("region", exc.reason)]) from None
        try:
            return normalise_e164(raw, default_region)
        except InvalidPhoneNumber as exc:
            raise InvalidFields([FieldProblem("phone", exc.reason)]) from None

    def _record(self, reference: str, action: str, outcome: str, phone: str, **details: str | None) -> None:
        self._audit.record(
            AuditEvent(
                WORKFLOW,
                reference,
                action,
                outcome,
                phone=phone,
                details={key: value for key, value in details.items() if value is not None},
                correlation_id=reference,
            )
        )

    def _now(self) -> datetime:
        # Milliseconds: the ledger keys changes by millisecond, and the queued copy must match.
        moment = datetime.fromtimestamp(self._clock(), UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
