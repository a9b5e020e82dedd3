"""Quiet hours with fixed clocks: the window's edges in several zones, stricter Florida and Oklahoma
windows, numbers with several candidate zones, daylight saving, and configured windows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

import pytest

from cxone_relay.workflows.outbound_sms.quiet_hours import (
    QuietHours,
    RegionalWindow,
    Window,
    candidate_zones,
    default_regions,
)

NEW_YORK = "+12125551234"
SAN_FRANCISCO = "+14155552671"
MIAMI = "+13055551234"
OKLAHOMA_CITY = "+14055551234"
ALASKA = "+19075551234"  # America/Adak and America/Anchorage
AUSTRALIAN_MOBILE = "+61412345678"  # eight zones, Cocos (+6:30) to Lord Howe (+11 in summer)
INDIA = "+919876543210"  # +5:30
TOLL_FREE = "+18002530000"  # 42 zones, Guam (+10) to Pago Pago (-11)
UNIFN = "+80012345678"  # international freephone: no zone


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def rules() -> QuietHours:
    return QuietHours(Window.parse("08:00-21:00"), default_regions())


# January: New York UTC-5, San Francisco UTC-8, Oklahoma UTC-6, Alaska -9/-10.
@pytest.mark.parametrize(
    ("phone", "now", "held_until"),
    [
        (NEW_YORK, utc(2027, 1, 15, 12, 59, 59), utc(2027, 1, 15, 13)),  # 07:59:59
        (NEW_YORK, utc(2027, 1, 15, 13), None),  # 08:00 opens
        (NEW_YORK, utc(2027, 1, 16, 1, 59, 59), None),  # 20:59:59
        (NEW_YORK, utc(2027, 1, 16, 2), utc(2027, 1, 16, 13)),  # 21:00 closes: tomorrow 08:00
        (SAN_FRANCISCO, utc(2027, 1, 15, 15, 59), utc(2027, 1, 15, 16)),
        (SAN_FRANCISCO, utc(2027, 1, 16, 4, 59), None),  # 20:59
        (SAN_FRANCISCO, utc(2027, 1, 16, 5), utc(2027, 1, 16, 16)),
        # Florida and Oklahoma: 08:00-20:00.
        (MIAMI, utc(2027, 1, 16, 0, 59, 59), None),  # 19:59:59
        (MIAMI, utc(2027, 1, 16, 1), utc(2027, 1, 16, 13)),  # 20:00
        (MIAMI, utc(2027, 1, 15, 12, 59), utc(2027, 1, 15, 13)),
        (OKLAHOMA_CITY, utc(2027, 1, 16, 1, 59), None),  # 19:59
        (OKLAHOMA_CITY, utc(2027, 1, 16, 2), utc(2027, 1, 16, 14)),  # 20:00 CST
        # Alaska: open only when 08:00 has come in Adak and 21:00 not yet in Anchorage.
        (ALASKA, utc(2027, 1, 15, 17), utc(2027, 1, 15, 18)),  # 08:00 Anchorage, 07:00 Adak
        (ALASKA, utc(2027, 1, 15, 18), None),
        (ALASKA, utc(2027, 1, 16, 5, 59), None),  # 20:59 Anchorage
        (ALASKA, utc(2027, 1, 16, 6), utc(2027, 1, 16, 18)),
        # Australia in summer: 08:00 Cocos (01:30Z) to 21:00 Sydney and Lord Howe (10:00Z).
        (AUSTRALIAN_MOBILE, utc(2027, 1, 15, 1, 29), utc(2027, 1, 15, 1, 30)),
        (AUSTRALIAN_MOBILE, utc(2027, 1, 15, 1, 30), None),
        (AUSTRALIAN_MOBILE, utc(2027, 1, 15, 9, 59), None),
        (AUSTRALIAN_MOBILE, utc(2027, 1, 15, 10), utc(2027, 1, 16, 1, 30)),
        (INDIA, utc(2027, 1, 15, 2, 29), utc(2027, 1, 15, 2, 30)),
        (INDIA, utc(2027, 1, 15, 15, 30), utc(2027, 1, 16, 2, 30)),  # 21:00 IST
    ],
)
def test_send_time_at_the_window_edges(rules, phone, now, held_until):
    verdict = rules.send_time(phone, now)

    assert verdict.held is (held_until is not None)
    assert verdict.at == (held_until or now)


def test_the_window_follows_daylight_saving():
    rules = QuietHours(Window.parse("08:00-21:00"))
    # 14 March 2027: New York springs forward at 02:00, so 08:00 is 12:00Z, not 13:00Z.
    assert rules.send_time(NEW_YORK, utc(2027, 3, 14, 11)).at == utc(2027, 3, 14, 12)
    assert rules.send_time(NEW_YORK, utc(2027, 3, 13, 13)).held is False
    assert rules.send_time(NEW_YORK, utc(2027, 3, 14, 12)).held is False


def test_a_number_with_several_zones_must_be_inside_every_one(rules):
    assert [str(zone) for zone in candidate_zones(ALASKA)] == ["America/Adak", "America/Anchorage"]
    verdict = rules.send_time(ALASKA, utc(2027, 1, 15, 17, 30))
    assert verdict.zones == ("America/Adak", "America/Anchorage")
    assert (verdict.held, verdict.at) == (True, utc(2027, 1, 15, 18))
    assert len(candidate_zones(AUSTRALIAN_MOBILE)) == 8


def test_no_send_time_when_the_zones_share_no_daytime_or_are_unknown(rules):
    # 22:00Z is 08:00 in Guam; 00:30Z is 21:00 in St John's: the only daytime all 42 zones share.
    assert rules.send_time(TOLL_FREE, utc(2027, 1, 15, 18)).at == utc(2027, 1, 15, 22)
    assert rules.send_time(TOLL_FREE, utc(2027, 1, 16, 0, 29)).held is False
    assert rules.send_time(TOLL_FREE, utc(2027, 1, 16, 0, 30)).at == utc(2027, 1, 16, 22)
    mornings = QuietHours(Window.parse("08:00-12:00"))
    never = mornings.send_time(TOLL_FREE, utc(2027, 1, 15, 18))
    assert (never.at, never.held, str(never.window), len(never.zones)) == (None, True, "08:00-12:00", 42)
    assert candidate_zones(UNIFN) == []
    unknown = rules.send_time(UNIFN, utc(2027, 1, 15, 18))
    assert (unknown.at, unknown.held, str(unknown.window), unknown.zones) == (None, True, "08:00-21:00", ())


def test_regional_windows_apply_only_to_their_prefixes_and_only_narrow(rules):
    assert str(rules.effective_window(MIAMI)) == "08:00-20:00"
    assert str(rules.effective_window(OKLAHOMA_CITY)) == "08:00-20:00"
    assert str(rules.effective_window(NEW_YORK)) == "08:00-21:00"
    wide = QuietHours(
        Window.parse("08:00-21:00"),
        [RegionalWindow("late", Window.parse("09:00-22:00"), ("+1212",))],
    )
    assert str(wide.effective_window(NEW_YORK)) == "09:00-21:00"
    assert str(wide.effective_window(SAN_FRANCISCO)) == "08:00-21:00"


def test_a_configured_window_replaces_the_default():
    rules = QuietHours(Window.parse("09:30-17:00"))
    assert rules.send_time(NEW_YORK, utc(2027, 1, 15, 14, 29)).at == utc(2027, 1, 15, 14, 30)
    assert rules.send_time(NEW_YORK, utc(2027, 1, 15, 14, 30)).held is False
    assert rules.send_time(NEW_YORK, utc(2027, 1, 15, 21, 59)).held is False
    assert rules.send_time(NEW_YORK, utc(2027, 1, 15, 22)).at == utc(2027, 1, 16, 14, 30)
    until_midnight = QuietHours(Window.parse("08:00-24:00"))
    assert until_midnight.send_time(NEW_YORK, utc(2027, 1, 16, 4, 59)).held is False  # 23:59


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("08:00-21:00", time(8), time(21)),
        ("00:00-24:00", time(0), None),
        ("07:30-20:45", time(7, 30), time(20, 45)),
    ],
)
def test_windows_parse(text, start, end):
    window = Window.parse(text)
    assert (window.start, window.end) == (start, end)
    assert str(window) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8:00-21:00", "'8:00-21:00' is not a window like 08:00-21:00"),
        ("21:00-08:00", "'21:00-08:00' must end after it starts (windows do not cross midnight)"),
        ("08:00-08:00", "'08:00-08:00' must end after it starts (windows do not cross midnight)"),
        ("08:00-24:30", "'08:00-24:30' ends after 24:00"),
        ("25:00-26:00", "'25:00-26:00' is not a window like 08:00-21:00"),
        ("08:00", "'08:00' is not a window like 08:00-21:00"),
    ],
)
def test_malformed_windows_are_refused(text, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Window.parse(text)


def test_a_window_may_be_written_with_spaces_around_it():
    assert str(Window.parse(" 08:00-21:00 ")) == "08:00-21:00"


def test_window_edges_are_start_included_end_excluded():
    window = Window.parse("08:00-21:00")
    assert not window.contains(time(7, 59, 59, 999999))
    assert window.contains(time(8))
    assert window.contains(time(20, 59, 59, 999999))
    assert not window.contains(time(21))


def test_a_verdict_names_the_window_and_zones_it_was_judged_by(rules):
    held = rules.send_time(MIAMI, utc(2027, 1, 16, 1))
    assert (str(held.window), held.zones) == ("08:00-20:00", ("America/New_York",))
    open_now = rules.send_time(SAN_FRANCISCO, utc(2027, 1, 15, 18))
    assert (open_now.at, open_now.held, str(open_now.window), open_now.zones) == (
        utc(2027, 1, 15, 18),
        False,
        "08:00-21:00",
        ("America/Los_Angeles",),
    )
    # A moment given in another zone is the same instant.
    from zoneinfo import ZoneInfo

    local = datetime(2027, 1, 15, 7, 59, tzinfo=ZoneInfo("America/New_York"))
    assert rules.send_time(NEW_YORK, local).at == utc(2027, 1, 15, 13)


def test_regions_that_leave_no_time_at_all_give_no_send_time():
    # 08:00-21:00 and a region's 21:30-23:00: no instant is inside both.
    rules = QuietHours(
        Window.parse("08:00-21:00"), [RegionalWindow("late", Window.parse("21:30-23:00"), ("+1212",))]
    )
    assert str(rules.effective_window(NEW_YORK)) == "21:30-21:00"
    verdict = rules.send_time(NEW_YORK, utc(2027, 1, 15, 18))
    assert (verdict.at, verdict.held, str(verdict.window), verdict.zones) == (
        None,
        True,
        "21:30-21:00",
        ("America/New_York",),
    )


def test_a_window_until_midnight_is_narrowed_by_a_region_that_ends_earlier():
    rules = QuietHours(
        Window.parse("08:00-24:00"), [RegionalWindow("fl", Window.parse("08:00-20:00"), ("+1305",))]
    )
    assert str(rules.effective_window(MIAMI)) == "08:00-20:00"
    assert str(rules.effective_window(NEW_YORK)) == "08:00-24:00"
    assert rules.effective_window(NEW_YORK).end is None


@pytest.mark.parametrize(
    "code",
    [
        *(239, 305, 321, 324, 352, 386, 407, 448, 561, 645, 656, 689),
        *(727, 728, 754, 772, 786, 813, 850, 863, 904, 941, 954),
        *(405, 539, 572, 580, 918),
    ],
)
def test_every_florida_and_oklahoma_area_code_ends_at_20(rules, code):
    assert str(rules.effective_window(f"+1{code}5551234")) == "08:00-20:00"


def test_default_regions_are_florida_and_oklahoma():
    assert [(region.name, str(region.window)) for region in default_regions()] == [
        ("US-FL", "08:00-20:00"),
        ("US-OK", "08:00-20:00"),
    ]


def test_send_times_are_given_in_utc_whatever_the_container_s_zone(rules, machine_time_zone):
    from zoneinfo import ZoneInfo

    machine_time_zone("Asia/Kolkata")
    open_now = rules.send_time(NEW_YORK, datetime(2027, 1, 15, 12, tzinfo=ZoneInfo("America/New_York")))
    held = rules.send_time(NEW_YORK, utc(2027, 1, 15, 12))
    assert (open_now.at, held.at) == (utc(2027, 1, 15, 17), utc(2027, 1, 15, 13))
    assert [verdict.at.utcoffset().total_seconds() for verdict in (open_now, held)] == [0, 0]


def test_the_next_opening_is_the_numbers_day_not_the_machines(rules, machine_time_zone):
    # 12:00Z is 07:00 on the 15th in New York but already the 16th on Kiritimati (UTC+14): the
    # window opens at 08:00 New York time on the 15th, not a day later.
    machine_time_zone("Pacific/Kiritimati")

    assert rules.send_time(NEW_YORK, utc(2027, 1, 15, 12)).at == utc(2027, 1, 15, 13)
