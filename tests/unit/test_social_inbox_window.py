"""The pull window and the checkpoint cursor: where a run starts and ends, which contacts it
takes, and how far the checkpoint moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cxone_relay.platform.data.checkpoints import Checkpoint
from cxone_relay.workflows.social_inbox.errors import CorruptCheckpoint
from cxone_relay.workflows.social_inbox.window import (
    Cursor,
    Placement,
    PullWindow,
    parse_position,
    position_text,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=90)
SETTLE = timedelta(seconds=60)
LIMIT = NOW - RETENTION
END = NOW - SETTLE
TICK = timedelta(microseconds=1)


def checkpoint_at(moment: datetime, *taken: str) -> Checkpoint:
    return Checkpoint(position_text(moment), tuple(taken), version=3)


def window(checkpoint: Checkpoint | None = None) -> PullWindow:
    return PullWindow.open(NOW, checkpoint, RETENTION, SETTLE)


def test_a_first_run_starts_at_the_retention_limit_and_ends_a_settling_minute_before_now():
    first = window()
    assert (first.start, first.end, first.retention_limit) == (LIMIT, END, LIMIT)
    assert first.taken_at_start == frozenset()
    assert first.days == (LIMIT.date(), NOW.date())


def test_a_run_starts_at_its_checkpoint_with_the_ids_taken_there():
    position = NOW - timedelta(hours=3)
    resumed = window(checkpoint_at(position, "a", "b"))
    assert (resumed.start, resumed.end) == (position, END)
    assert resumed.taken_at_start == {"a", "b"}
    assert resumed.days == (position.date(), NOW.date())


def test_a_checkpoint_older_than_the_retention_limit_starts_at_the_limit():
    stale = window(checkpoint_at(LIMIT - TICK, "a"))
    assert (stale.start, stale.taken_at_start) == (LIMIT, frozenset())
    at_limit = window(checkpoint_at(LIMIT, "a"))
    assert (at_limit.start, at_limit.taken_at_start) == (LIMIT, {"a"})


def test_a_checkpoint_ahead_of_the_window_takes_nothing_and_asks_no_day_past_today():
    ahead = window(checkpoint_at(NOW + timedelta(days=2)))
    assert ahead.place("x", NOW - timedelta(hours=1), NOW - timedelta(hours=1)) is Placement.PULLED
    assert ahead.days == (NOW.date(), NOW.date())


def test_the_window_never_ends_before_the_retention_limit():
    odd = PullWindow.open(NOW, None, timedelta(seconds=30), timedelta(seconds=60))
    assert odd.end == odd.start == NOW - timedelta(seconds=30)


def test_the_window_ends_are_computed_from_the_given_clock():
    later = PullWindow.open(NOW + timedelta(days=1), None, RETENTION, SETTLE)
    assert (later.start, later.end) == (LIMIT + timedelta(days=1), END + timedelta(days=1))


@pytest.mark.parametrize(
    ("created", "updated", "contact_id", "placement"),
    [
        (NOW - timedelta(hours=2), NOW - timedelta(hours=1), "x", Placement.NEW),
        (END, END, "x", Placement.NEW),  # the end is inclusive
        (END, END + TICK, "x", Placement.LATER),
        (NOW + timedelta(hours=1), NOW + timedelta(hours=1), "x", Placement.LATER),
        (LIMIT - timedelta(days=5), END + TICK, "x", Placement.LATER),  # later first: the next run drops it
        (LIMIT, NOW - timedelta(hours=1), "x", Placement.NEW),  # the limit is inclusive
        (LIMIT - TICK, NOW - timedelta(hours=1), "x", Placement.EXPIRED),
        (LIMIT, LIMIT, "x", Placement.NEW),  # last updated at the limit itself: still inside
        (LIMIT - timedelta(days=1), LIMIT - TICK, "x", Placement.EXPIRED),
        (END + TICK, END, "x", Placement.FUTURE),  # created after it was last updated
    ],
)
def test_contacts_are_placed_against_the_window(created, updated, contact_id, placement):
    assert window().place(contact_id, created, updated) is placement


@pytest.mark.parametrize(
    ("updated", "contact_id", "placement"),
    [
        ("before", "x", Placement.PULLED),
        ("at", "taken", Placement.PULLED),
        ("at", "other", Placement.NEW),  # shares the time, but was not taken yet
        ("after", "taken", Placement.NEW),  # taken before, updated since
    ],
)
def test_contacts_at_the_checkpoint_are_taken_once(updated, contact_id, placement):
    position = NOW - timedelta(hours=3)
    moments = {"before": position - TICK, "at": position, "after": position + TICK}
    resumed = window(checkpoint_at(position, "taken"))
    assert resumed.place(contact_id, LIMIT + timedelta(days=1), moments[updated]) is placement


def test_the_cursor_follows_updated_at_and_remembers_ties():
    start = NOW - timedelta(hours=3)
    cursor = Cursor.at_start_of(window(checkpoint_at(start, "a")))
    assert (cursor.position, cursor.taken) == (start, {"a"})

    cursor.take("b", start)
    assert (cursor.position, cursor.taken) == (start, {"a", "b"})
    cursor.take("c", start + TICK)
    assert (cursor.position, cursor.taken) == (start + TICK, {"c"})
    cursor.take("d", start)  # an earlier time never moves it back
    assert (cursor.position, cursor.taken) == (start + TICK, {"c"})


def test_a_finished_listing_moves_the_cursor_to_the_windows_end():
    resumed = window(checkpoint_at(NOW - timedelta(hours=3), "a"))
    cursor = Cursor.at_start_of(resumed)
    cursor.finish(resumed)
    assert (cursor.position, cursor.taken) == (END, set())

    at_end = Cursor(END, {"z"})
    at_end.finish(resumed)
    assert (at_end.position, at_end.taken) == (END, {"z"})  # the ties at the end still count


def test_the_lag_is_now_minus_the_checkpoint_and_never_negative():
    assert Cursor(NOW - timedelta(minutes=5)).lag_seconds(NOW) == 300.0
    assert Cursor(NOW + timedelta(minutes=5)).lag_seconds(NOW) == 0.0


def test_positions_are_fixed_width_text_in_time_order_to_the_microsecond():
    earlier = datetime(2026, 3, 10, 9, 5, 1, 7, tzinfo=UTC)
    later = earlier + TICK
    assert position_text(earlier) == "2026-03-10T09:05:01.000007Z"
    assert position_text(earlier) < position_text(later)
    assert parse_position(position_text(later)) == later


def test_positions_are_written_in_utc_whatever_the_zone_of_the_time_or_the_container(local_time_not_utc):
    new_york = datetime(2026, 3, 10, 7, 5, 1, 7, tzinfo=ZoneInfo("America/New_York"))
    assert position_text(new_york) == "2026-03-10T11:05:01.000007Z"


def test_a_checkpoint_that_is_not_a_time_is_reported_not_guessed():
    expected = "checkpoint position 'yesterday' is not a %Y-%m-%dT%H:%M:%S.%fZ time"
    with pytest.raises(CorruptCheckpoint) as raised:
        window(Checkpoint("yesterday", (), 1))
    assert str(raised.value) == expected
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
