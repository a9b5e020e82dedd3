"""The opt-out queue's consumer: every opted-out number into the DNC group of every CXone
environment, one call per environment per batch.

Per record (`OptOutRecorder.process`, once per record through the consumer's idempotency): the
opt-out goes into the consent ledger. An inbound STOP is there already and a consent API opt-out
too; recording again is a no-op, so every source is handled alike.

Per batch (`DncBatchSync.finalise`):
1. Numbers are deduplicated: a number sent by several records is one DNC record.
2. The ledger is read afresh: a number whose latest change is an opt-in (a START or an opt-in
   after this opt-out) is not put on DNC; its records are done, audited as superseded.
3. What each environment already has is read from the DNC sync state: a number is sent only to
   the environments that do not have it yet, so a batch retried because one environment failed
   never goes to the others again, and a number already synced everywhere is not sent at all.
4. Each environment gets one POST .../dnc-groups/{groupId}/records with the numbers it needs,
   under an idempotency key derived from that content (rules.py). Its answer is read record by
   record, since an HTTP 200 can carry failures: applied numbers are stored as synced in that
   environment at once, so a later failure elsewhere cannot make us resend them.
5. A record is done when its number is in every environment. Otherwise it is reported failed and
   comes back (a failure that may pass), or goes to the DLQ with its reason (CXone refused the
   number for good); either way only the environments still missing it are called next time.

Audit per record and environment (requested at, applied at, source; the number hashed and
masked), and once per record when its number is in every environment, with the lag. Metrics:
DncRecordsApplied and DncSyncFailed by environment, DncSyncLag (request to applied everywhere,
seconds), OptOutsDeduplicated (records that needed no DNC call of their own: a copy of another
record of the batch, or a number already in every environment), OptOutsSuperseded (records of a
number whose latest word is an opt-in); each once per batch, and a record counts in one at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cxone_relay.platform.consumer import Processed, refuses_the_record
from cxone_relay.platform.cxone.client import CxoneClient
from cxone_relay.platform.data.audit import AuditEvent, AuditSubject, AuditTrail, StageRecord
from cxone_relay.platform.data.consent import ConsentChange, ConsentLedger, ConsentState, ConsentStatus
from cxone_relay.platform.data.dnc import DncCallLog, DncSync, DncSyncStore
from cxone_relay.platform.observability import count, logger, metrics
from cxone_relay.platform.redaction import PhoneHasher, redact_text
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.consent import rules
from cxone_relay.workflows.consent.errors import DncNotApplied, DncRecordRefused
from cxone_relay.workflows.consent.models import OptOutOutcome, QueuedOptOut
from cxone_relay.workflows.consent.rules import ErrorRules, RecordVerdict, Verdict

WORKFLOW = "consent"

OptOutProcessed = Processed[QueuedOptOut, OptOutOutcome]


class OptOutRecorder:
    def __init__(self, ledger: ConsentLedger) -> None:
        self._ledger = ledger

    def process(self, message: QueuedOptOut, audit: StageRecord, budget: TimeBudget) -> OptOutOutcome:
        """Into the ledger; whether it stands is read afresh for the whole batch (finalise), as a
        record that comes back may find the ledger moved on. Its decisions are audited per
        environment by finalise; `audit` takes only the consumer's own steps (replayed, dead-lettered)."""
        self._ledger.record(
            ConsentChange(
                message.phone,
                ConsentStatus.OPTED_OUT,
                message.source,
                message.reference,
                message.requested_at,
            )
        )
        return OptOutOutcome(reference=message.reference)


@dataclass(frozen=True)
class DncTarget:
    """One CXone environment, through its client: opt-outs go to the DNC group its settings name
    (the consumer's settings refuse an environment without one), so the group the call goes to and
    the group the audit and the sync state name are one value."""

    client: CxoneClient

    @property
    def name(self) -> str:
        return self.client.environment.name

    @property
    def group_id(self) -> str:
        return str(self.client.environment.dnc_group_id)


@dataclass(frozen=True)
class _Number:
    """One number of the batch and the records that carry it (in batch order)."""

    phone: str
    records: list[tuple[str, QueuedOptOut]]

    @property
    def first_request(self) -> QueuedOptOut:
        return min((message for _, message in self.records), key=lambda message: message.requested_at)


class DncBatchSync:
    def __init__(
        self,
        targets: Sequence[DncTarget],
        ledger: ConsentLedger,
        syncs: DncSyncStore,
        calls: DncCallLog,
        hasher: PhoneHasher,
        audit: AuditTrail,
        error_rules: ErrorRules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._targets = list(targets)
        self._ledger = ledger
        self._syncs = syncs
        self._calls = calls
        self._hasher = hasher
        self._audit = audit
        self._rules = error_rules
        self._clock = clock

    def finalise(self, completed: dict[str, OptOutProcessed], budget: TimeBudget) -> dict[str, Exception]:
        """Returns the SQS message ids whose numbers are not in every environment, with why."""
        numbers: dict[str, _Number] = {}
        for record_id, processed in completed.items():
            message = processed.message
            numbers.setdefault(message.phone, _Number(message.phone, [])).records.append((record_id, message))
        current = self._ledger.current_many(numbers)
        superseded = {n.phone: state for n in numbers.values() if (state := _opt_in(current[n.phone]))}
        wanted = [n for n in numbers.values() if n.phone not in superseded]
        synced = self._syncs.load([n.phone for n in wanted], [target.name for target in self._targets])
        verdicts: dict[tuple[str, str], RecordVerdict] = {}
        for target in self._targets:
            have = [n.phone for n in wanted if (n.phone, target.name) in synced]
            needed = [numbers[phone] for phone in rules.still_needed((n.phone for n in wanted), have)]
            if needed:
                applied = self._send(target, needed, verdicts, budget)
                synced.update({(sync.phone, target.name): sync for sync in applied})
        events: list[AuditEvent] = []
        failures: dict[str, Exception] = {}
        deduplicated = 0
        for phone, state in superseded.items():
            events.extend(self._superseded(numbers[phone], state))
        for number in wanted:
            error = self._settle(number, synced, verdicts, events)
            if error is not None:
                failures.update(dict.fromkeys((record_id for record_id, _ in number.records), error))
            # Records that needed no call of their own: every copy but the one sent, or all of
            # them when the number was in every environment before this batch.
            sent = any((number.phone, target.name) in verdicts for target in self._targets)
            deduplicated += len(number.records) - (1 if sent else 0)
        self._audit.record_many(events)
        if deduplicated:
            count("OptOutsDeduplicated", value=deduplicated)
        if superseded:
            count("OptOutsSuperseded", value=sum(len(numbers[phone].records) for phone in superseded))
        return failures

    # One environment -----------------------------------------------------------------------

    def _send(
        self,
        target: DncTarget,
        needed: list[_Number],
        verdicts: dict[tuple[str, str], RecordVerdict],
        budget: TimeBudget,
    ) -> list[DncSync]:
        """One DNC call for the numbers `target` still needs; their verdicts go into `verdicts`,
        and the applied ones are stored as synced (and returned)."""
        phones = [number.phone for number in needed]
        content = rules.content_key(
            target.name, target.group_id, (self._hasher.fingerprint(p) for p in phones)
        )
        failed_answers = self._calls.answers(content, target.name)
        try:
            result = target.client.add_dnc_records(
                phones,
                idempotency_key=rules.idempotency_key(content, failed_answers),
                budget=budget,
            )
        except Exception as exc:
            # No usable answer (an outage, a refusal of the whole call, a configuration problem):
            # every number of the call shares its fate; the other environments carry on.
            refused = refuses_the_record(exc)
            verdict = RecordVerdict(
                Verdict.REFUSED if refused else Verdict.RETRY, redact_text(f"{type(exc).__name__}: {exc}")
            )
            verdicts.update({(phone, target.name): verdict for phone in phones})
            if refused:
                # CXone answered this content (a 4xx): a replay from the DLQ needs a key of its own.
                self._calls.record_answer(
                    content, target.name, failed_answers + 1, applied=0, failed=len(phones)
                )
            logger.warning(
                "DNC call failed",
                extra={
                    "environment": target.name,
                    "numbers": len(phones),
                    "reason_class": type(exc).__name__,
                },
            )
            count("DncSyncFailed", value=len(phones), environment=target.name)
            return []
        applied_at = self._now()
        answered = rules.read_results(phones, result, self._rules)
        verdicts.update({(phone, target.name): verdict for phone, verdict in answered.items()})
        applied = [
            DncSync(
                phone=number.phone,
                environment=target.name,
                group_id=target.group_id,
                applied_at=applied_at,
                requested_at=number.first_request.requested_at,
                source=number.first_request.source,
                reference=number.first_request.reference,
            )
            for number in needed
            if answered[number.phone].verdict is Verdict.APPLIED
        ]
        failed = len(phones) - len(applied)
        if failed:
            # CXone has answered this content: the next attempt needs a key of its own.
            self._calls.record_answer(
                content, target.name, failed_answers + 1, applied=len(applied), failed=failed
            )
            count("DncSyncFailed", value=failed, environment=target.name)
        self._syncs.save(applied)
        if applied:
            count("DncRecordsApplied", value=len(applied), environment=target.name)
        logger.info(
            "DNC call answered",
            extra={
                "environment": target.name,
                "sent": len(phones),
                "applied": len(applied),
                "failed": failed,
                "error_count": result.error_count,
            },
        )
        return applied

    # One number ----------------------------------------------------------------------------

    def _settle(
        self,
        number: _Number,
        synced: dict[tuple[str, str], DncSync],
        verdicts: dict[tuple[str, str], RecordVerdict],
        events: list[AuditEvent],
    ) -> Exception | None:
        """Audit the number in every environment; the error its records fail with, if any."""
        retry: dict[str, str] = {}
        refused: dict[str, str] = {}
        applied_now = False
        for target in self._targets:
            key = (number.phone, target.name)
            verdict = verdicts.get(key)
            if verdict is None:  # in this environment before this batch: nothing was sent
                events.extend(self._already_synced(number, target, synced[key]))
                continue
            if verdict.verdict is Verdict.APPLIED:
                applied_now = True
                events.extend(self._applied(number, target, synced[key], verdict))
                continue
            (retry if verdict.verdict is Verdict.RETRY else refused)[target.name] = str(verdict.error)
            events.extend(self._failed(number, target, verdict))
        if retry:
            return DncNotApplied(retry | refused)
        if refused:
            return DncRecordRefused(refused)
        if not applied_now:
            # In every environment before this batch: a repeated request, nothing sent.
            return None
        applied_at = max(synced[(number.phone, target.name)].applied_at for target in self._targets)
        metrics.add_metric(
            name="DncSyncLag",
            unit=MetricUnit.Seconds,
            value=rules.lag_seconds(number.first_request.requested_at, applied_at),
        )
        for _, message in number.records:
            events.append(
                self._event(
                    message,
                    "dnc_complete",
                    "ok",
                    requested_at=_text(message.requested_at),
                    applied_at=_text(applied_at),
                    lag_seconds=round(rules.lag_seconds(message.requested_at, applied_at), 3),
                    environments=[target.name for target in self._targets],
                )
            )
        return None

    def _already_synced(self, number: _Number, target: DncTarget, sync: DncSync) -> list[AuditEvent]:
        return [
            self._event(
                message,
                "dnc_already_synced",
                "ok",
                applied_at=_text(sync.applied_at),
                **_where(target, message),
            )
            for _, message in number.records
        ]

    def _applied(
        self, number: _Number, target: DncTarget, sync: DncSync, verdict: RecordVerdict
    ) -> list[AuditEvent]:
        return [
            self._event(
                message,
                "dnc_applied",
                "ok",
                applied_at=_text(sync.applied_at),
                already_listed=verdict.already_listed,
                **_where(target, message),
            )
            for _, message in number.records
        ]

    def _failed(self, number: _Number, target: DncTarget, verdict: RecordVerdict) -> list[AuditEvent]:
        refused = verdict.verdict is Verdict.REFUSED
        return [
            self._event(
                message,
                "dnc_refused" if refused else "dnc_failed",
                "permanent_failure" if refused else "retry",
                reason=verdict.error,
                **_where(target, message),
            )
            for _, message in number.records
        ]

    def _superseded(self, number: _Number, state: ConsentState) -> list[AuditEvent]:
        return [
            self._event(
                message,
                "dnc_skipped",
                "superseded",
                reason="a newer opt-in stands",
                requested_at=_text(message.requested_at),
                consent_updated_at=state.updated_at,
            )
            for _, message in number.records
        ]

    def _event(
        self, message: QueuedOptOut, action: str, outcome: str, reason: str | None = None, **details: Any
    ) -> AuditEvent:
        return AuditEvent(
            workflow=WORKFLOW,
            subject=message.reference,
            action=action,
            outcome=outcome,
            reason=reason,
            phone=message.phone,
            details={"source": message.source, **details},
            correlation_id=message.correlation_id,
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def _where(target: DncTarget, message: QueuedOptOut) -> dict[str, str]:
    return {
        "environment": target.name,
        "group_id": target.group_id,
        "requested_at": _text(message.requested_at),
    }


def _opt_in(state: ConsentState | None) -> ConsentState | None:
    """The state, if the ledger's latest word is an opt-in (a number it does not know has none)."""
    return state if state is not None and state.status is ConsentStatus.OPTED_IN else None


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_subject(message: QueuedOptOut) -> AuditSubject:
    """Who an opt-out's consumer audit record is about: the change it names, and its number."""
    return AuditSubject(message.reference, phone=message.phone, correlation_id=message.correlation_id)
