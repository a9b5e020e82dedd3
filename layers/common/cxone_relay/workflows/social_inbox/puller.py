"""One scheduled run of the social inbox: page through CXone's digital contacts from the
checkpoint, classify and ticket each conversation, and save the checkpoint after every page.

- Overlap: a run first takes a lease in the state table that outlives its invocation (its
  remaining time and a margin). A run that finds it held does nothing, so two runs never process
  the same page. The checkpoint save is conditional on the version the run read as well, so even
  a run that somehow kept going could not move it backwards.
- Time: a run starts another page only while the Lambda has time for one (`page_seconds`), then
  stops with its checkpoint saved; the next run resumes there.
- Failures: a CXone or ticketing failure that may pass ends the run early (the checkpoint holds
  what was done, the next run carries on); anything else is audited and raised, so the function
  reports an error.
- Audit: one record per conversation taken or dropped, one per run; metrics per run.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit

from cxone_relay.platform.cxone.models import DigitalContact
from cxone_relay.platform.data.audit import AuditEvent, AuditTrail
from cxone_relay.platform.data.checkpoints import CheckpointStore
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.observability import count, logger, metrics
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.social_inbox.models import Classification, Conversation, RunReport
from cxone_relay.workflows.social_inbox.paging import ContactPage, InboxReader
from cxone_relay.workflows.social_inbox.rules import Classifier
from cxone_relay.workflows.social_inbox.tickets import TicketExport, TicketOutcome, TicketResult, ticket_for
from cxone_relay.workflows.social_inbox.window import Cursor, Placement, PullWindow, position_text

WORKFLOW = "social-inbox"
LEASE_PURPOSE = "inbox-pull"
# The lease lasts the invocation's remaining time plus this margin, so it lapses only once the
# run holding it is over; a run that crashed holds up the next one by this much at most.
LEASE_MARGIN_SECONDS = 30.0
# Kept back from the Lambda's remaining time for the last checkpoint save, audit and metrics.
RESERVE_SECONDS = 3.0

LeaseFactory = Callable[[float], Lease]  # seconds -> a lease with a holder of its own
Ended = Literal["completed", "incomplete"]


@dataclass
class _Run:
    run_id: str
    window: PullWindow
    cursor: Cursor
    version: int
    pages: int = 0
    taken: Counter[str] = field(default_factory=Counter)  # by priority
    tickets: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _PageResult:
    done: bool  # every contact of the page handled
    at_end: bool  # done, and nothing more in the window after this page
    reason: str | None = None


class InboxPuller:
    def __init__(
        self,
        *,
        name: str,
        reader: InboxReader,
        classifier: Classifier,
        tickets: TicketExport | None,
        checkpoints: CheckpointStore,
        lease: LeaseFactory,
        audit: AuditTrail,
        retention: timedelta,
        settle: timedelta,
        page_seconds: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._reader = reader
        self._classifier = classifier
        self._tickets = tickets
        self._checkpoints = checkpoints
        self._lease = lease
        self._audit = audit
        self._retention = retention
        self._settle = settle
        self._page_seconds = page_seconds
        self._clock = clock
        self._monotonic = monotonic

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        """The scheduled event carries nothing the run needs: where to start is the checkpoint."""
        run_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
        budget = TimeBudget.from_context(context, reserve_seconds=RESERVE_SECONDS)
        return self.run(run_id, budget).model_dump(mode="json")

    def run(self, run_id: str, budget: TimeBudget) -> RunReport:
        started = self._monotonic()
        lease = self._lease(budget.usable_seconds() + RESERVE_SECONDS + LEASE_MARGIN_SECONDS)
        if not lease.acquire(self._name):
            return self._skipped(run_id, started)
        try:
            return self._pull(run_id, budget, started)
        finally:
            try:
                lease.release(self._name)
            except Exception:
                # It lapses by itself; the next run waits at most the margin for it.
                logger.exception("could not release the inbox pull lease", extra={"run_id": run_id})

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _pull(self, run_id: str, budget: TimeBudget, started: float) -> RunReport:
        try:
            checkpoint = self._checkpoints.load(self._name)
            window = PullWindow.open(self._now(), checkpoint, self._retention, self._settle)
        except Exception as exc:
            # A checkpoint that cannot be read (or makes no window) fails the run before it has
            # anything to report; it is audited and logged like any failed run all the same.
            self._unopened(run_id, started, type(exc).__name__)
            raise
        run = _Run(run_id, window, Cursor.at_start_of(window), checkpoint.version if checkpoint else 0)
        outcome: Ended
        try:
            outcome, reason = self._pages(run, budget)
        except UpstreamError as exc:
            if not exc.retryable:
                self._finish(run, started, "incomplete", f"{exc.service} refused: {exc}", failed=True)
                raise
            outcome, reason = "incomplete", f"{exc.service} unavailable: {exc}"
        except Exception as exc:
            self._finish(run, started, "incomplete", type(exc).__name__, failed=True)
            raise
        return self._finish(run, started, outcome, reason)

    def _pages(self, run: _Run, budget: TimeBudget) -> tuple[Ended, str | None]:
        token: str | None = None
        while True:
            if budget.usable_seconds() < self._page_seconds:
                return "incomplete", "time budget spent"
            page = self._reader.page(run.window, budget, token)
            run.pages += 1
            result = self._take(run, page, budget)
            if result.at_end:  # only ever with every contact of the page done
                run.cursor.finish(run.window)
            saved = self._checkpoints.save(
                self._name, position_text(run.cursor.position), run.cursor.taken, expected_version=run.version
            )
            if saved is None:
                logger.warning("inbox checkpoint moved by another run", extra={"run_id": run.run_id})
                return "incomplete", "checkpoint moved by another run"
            run.version = saved.version
            if not result.done:
                return "incomplete", result.reason
            if result.at_end:
                return "completed", None
            token = page.scroll_token

    def _take(self, run: _Run, page: ContactPage, budget: TimeBudget) -> _PageResult:
        """Classify and ticket the page's new conversations, then move the cursor over the page's
        contacts in order, up to the first one whose ticket did not land."""
        if page.unreadable:
            run.dropped["unreadable"] += page.unreadable
            logger.warning("unreadable contacts in the listing", extra={"count": page.unreadable})
        placed = [
            (contact, run.window.place(contact.id, contact.created_at, contact.updated_at))
            for contact in page.contacts
        ]
        # Sorted by updatedAt: a contact after the window means the rest of the listing is too.
        at_end = page.scroll_token is None or any(placement is Placement.LATER for _, placement in placed)
        new = [contact for contact, placement in placed if placement is Placement.NEW]
        classified = [
            (conversation, self._classifier.classify(conversation.text))
            for conversation in self._reader.conversations(new, budget)
        ]
        outcomes = self._upsert(classified, budget)
        decided = {pair[0].id: pair for pair in classified}
        events: list[AuditEvent] = []
        try:
            for contact, placement in placed:
                if placement in (Placement.PULLED, Placement.LATER):
                    continue
                if placement is Placement.NEW:
                    conversation, classification = decided[contact.id]
                    outcome = outcomes.get(contact.id)
                    if outcome is None or outcome.result is TicketResult.FAILED:
                        if outcome is not None:
                            events.append(self._ticketing_failed(run, conversation, outcome))
                        return _PageResult(False, False, "ticketing unavailable")
                    events.append(self._taken(run, conversation, classification, outcome))
                else:
                    run.dropped[placement.value] += 1
                    events.append(self._dropped(run, contact, placement))
                run.cursor.take(contact.id, contact.updated_at)
            return _PageResult(True, at_end)
        finally:
            self._audit.record_many(events)

    def _upsert(
        self, classified: list[tuple[Conversation, Classification]], budget: TimeBudget
    ) -> dict[str, TicketOutcome]:
        if self._tickets is None:
            return {conversation.id: TicketOutcome(TicketResult.UPSERTED) for conversation, _ in classified}
        tickets = [ticket_for(conversation, classification) for conversation, classification in classified]
        outcomes = self._tickets.upsert(tickets, budget)
        return {ticket.external_id: outcome for ticket, outcome in zip(tickets, outcomes, strict=False)}

    # -- audit and metrics ---------------------------------------------------------------------

    def _taken(
        self, run: _Run, conversation: Conversation, classification: Classification, outcome: TicketOutcome
    ) -> AuditEvent:
        run.taken[classification.priority.value] += 1
        details = _decision(conversation, classification)
        if self._tickets is None:
            return self._event(run, conversation.id, "classified", "ok", details=details)
        if outcome.result is TicketResult.REFUSED:
            return self._event(
                run,
                conversation.id,
                "ticket_refused",
                "permanent_failure",
                reason=str(outcome.error),
                details=details | {"status": outcome.error.status if outcome.error else None},
            )
        run.tickets += 1
        return self._event(run, conversation.id, "ticket_upserted", "ok", details=details)

    def _ticketing_failed(self, run: _Run, conversation: Conversation, outcome: TicketOutcome) -> AuditEvent:
        return self._event(run, conversation.id, "ticketing_failed", "retry", reason=str(outcome.error))

    def _dropped(self, run: _Run, contact: DigitalContact, placement: Placement) -> AuditEvent:
        details = {
            "created_at": position_text(contact.created_at),
            "updated_at": position_text(contact.updated_at),
        }
        return self._event(run, contact.id, "dropped", "skipped", reason=placement.value, details=details)

    def _event(
        self,
        run: _Run,
        subject: str,
        action: str,
        outcome: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            WORKFLOW, subject, action, outcome, reason, details=details or {}, correlation_id=run.run_id
        )

    def _elapsed_ms(self, started: float) -> int:
        return int((self._monotonic() - started) * 1000)

    def _unopened(self, run_id: str, started: float, reason: str) -> None:
        duration_ms = self._elapsed_ms(started)
        self._audit.record(
            AuditEvent(
                WORKFLOW,
                run_id,
                "run_failed",
                "retry",
                reason,
                details={"duration_ms": duration_ms},
                correlation_id=run_id,
            )
        )
        logger.error(
            "inbox pull run finished",
            extra={"run_id": run_id, "outcome": "run_failed", "reason": reason, "duration_ms": duration_ms},
        )

    def _skipped(self, run_id: str, started: float) -> RunReport:
        report = RunReport(
            run_id=run_id,
            outcome="skipped",
            reason="another run holds the lease",
            duration_ms=self._elapsed_ms(started),
        )
        count("InboxRunsSkipped")
        self._audit.record(
            AuditEvent(WORKFLOW, run_id, "run_skipped", "skipped", report.reason, correlation_id=run_id)
        )
        logger.info("inbox pull skipped: another run holds the lease", extra={"run_id": run_id})
        return report

    def _finish(
        self, run: _Run, started: float, outcome: Ended, reason: str | None, *, failed: bool = False
    ) -> RunReport:
        report = RunReport(
            run_id=run.run_id,
            outcome=outcome,
            reason=reason,
            pages=run.pages,
            conversations=sum(run.taken.values()),
            by_priority=dict(sorted(run.taken.items())),
            tickets=run.tickets,
            dropped=dict(sorted(run.dropped.items())),
            window_from=position_text(run.window.start),
            window_to=position_text(run.window.end),
            checkpoint=position_text(run.cursor.position),
            checkpoint_lag_seconds=round(run.cursor.lag_seconds(self._now()), 3),
            duration_ms=self._elapsed_ms(started),
        )
        count("InboxPages", value=report.pages)
        count("ConversationsPulled", value=report.conversations)
        for priority, taken in report.by_priority.items():
            count("ConversationsByPriority", value=taken, priority=priority)
        metrics.add_metric(name="InboxRunDuration", unit=MetricUnit.Milliseconds, value=report.duration_ms)
        metrics.add_metric(
            name="CheckpointLag", unit=MetricUnit.Seconds, value=report.checkpoint_lag_seconds or 0.0
        )
        action = "run_failed" if failed else f"run_{outcome}"
        details = report.model_dump(exclude={"run_id", "outcome", "reason"})
        self._audit.record(
            AuditEvent(
                WORKFLOW,
                run.run_id,
                action,
                "ok" if outcome == "completed" else "retry",
                reason,
                details=details,
                correlation_id=run.run_id,
            )
        )
        log = logger.error if failed else logger.info
        log("inbox pull run finished", extra={"run_id": run.run_id, "outcome": action, **details})
        return report


def _decision(conversation: Conversation, classification: Classification) -> dict[str, Any]:
    """What was decided about a conversation, without its words (they are the ticket's, not the
    audit trail's: they may hold anything the customer typed)."""
    return {
        "priority": classification.priority.value,
        "sentiment_score": classification.sentiment_score,
        "keywords": list(classification.keywords),
        "language": classification.language,
        "shouting": classification.shouting,
        "raised_for_shouting": classification.raised_for_shouting,
        "channel": conversation.channel,
        "updated_at": position_text(conversation.updated_at),
    }
