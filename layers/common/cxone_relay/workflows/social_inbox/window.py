"""The pull window: which contacts a run takes, and how far its checkpoint moves.

A run takes contacts updated from the checkpoint to `end` (now less a short settling delay, so a
contact whose update the listing has not indexed yet is not skipped for good). It never reaches
back past the retention limit, however old the checkpoint, and never ends in the future.
The listing is asked for those days (its date filter has day resolution) and every contact is
placed here again, to the microsecond, on our own side.

The checkpoint is a position (an updatedAt) plus the ids already taken at exactly that position:
several contacts can share one, and a page can end between them. It moves past a contact only
once the contact is done, so a run stopped anywhere is resumed with no gap and no repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from cxone_relay.platform.data.checkpoints import Checkpoint
from cxone_relay.workflows.social_inbox.errors import CorruptCheckpoint

POSITION_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order


def position_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(POSITION_FORMAT)


def parse_position(text: str) -> datetime:
    try:
        return datetime.strptime(text, POSITION_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise CorruptCheckpoint(f"checkpoint position {text!r} is not a {POSITION_FORMAT} time") from None


class Placement(StrEnum):
    NEW = "new"  # updated inside the window: classify and ticket it
    PULLED = "already_pulled"  # at or before the checkpoint: an earlier page or run took it
    LATER = "after_window"  # updated after the window's end: the next run's
    EXPIRED = "older_than_retention"  # created (or last updated) before the retention limit
    FUTURE = "in_the_future"  # created after the window's end: a time that cannot be right


@dataclass(frozen=True)
class PullWindow:
    start: datetime
    end: datetime
    retention_limit: datetime
    taken_at_start: frozenset[str] = frozenset()

    @classmethod
    def open(
        cls, now: datetime, checkpoint: Checkpoint | None, retention: timedelta, settle: timedelta
    ) -> PullWindow:
        limit = now - retention
        end = max(now - settle, limit)
        if checkpoint is None:
            return cls(limit, end, limit)
        position = parse_position(checkpoint.position)
        if position < limit:
            # Everything before the limit is out of bounds, ids taken there included.
            return cls(limit, end, limit)
        # A checkpoint ahead of `end` (the clock stepped back) stays put: nothing is due yet.
        return cls(position, end, limit, frozenset(checkpoint.seen_at_position))

    @property
    def days(self) -> tuple[date, date]:
        """The listing's date filter: the window's first and last day (UTC), both inclusive."""
        return min(self.start, self.end).date(), self.end.date()

    def place(self, contact_id: str, created_at: datetime, updated_at: datetime) -> Placement:
        if updated_at > self.end:
            return Placement.LATER
        if created_at < self.retention_limit or updated_at < self.retention_limit:
            return Placement.EXPIRED
        if created_at > self.end:
            return Placement.FUTURE
        if updated_at < self.start or (updated_at == self.start and contact_id in self.taken_at_start):
            return Placement.PULLED
        return Placement.NEW


@dataclass
class Cursor:
    """The checkpoint as a run moves it: a position and the ids taken at exactly that position."""

    position: datetime
    taken: set[str] = field(default_factory=set)

    @classmethod
    def at_start_of(cls, window: PullWindow) -> Cursor:
        return cls(window.start, set(window.taken_at_start))

    def take(self, contact_id: str, updated_at: datetime) -> None:
        if updated_at > self.position:
            self.position, self.taken = updated_at, {contact_id}
        elif updated_at == self.position:
            self.taken.add(contact_id)

    def finish(self, window: PullWindow) -> None:
        """The listing has nothing more up to the window's end: the checkpoint moves there."""
        if window.end > self.position:
            self.position, self.taken = window.end, set()

    def lag_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.position).total_seconds())
