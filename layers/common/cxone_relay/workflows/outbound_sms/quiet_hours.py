"""Quiet hours: campaign messages go out only inside the send window in the recipient's local time.

The local time comes from the number: phonenumbers' `time_zones_for_number` gives its candidate
zones, and a number with several (an Alaska or an Australian mobile number) must be inside the
window in every one of them, so no candidate recipient is woken up. The window is 08:00-21:00 by
default; regional windows (Florida and Oklahoma, 08:00-20:00, by area code) narrow it further, and
every window that applies to a number must hold at once.

A message outside the window is held until the earliest instant at which all of them are open:
computed here, kept by the caller (the state table) for as many days as that takes. Keyword
confirmations (STOP, START, HELP replies) never pass this gate: the inbound workflow sends them
at once, whatever the hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

UNKNOWN_ZONE = "Etc/Unknown"
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# How far ahead an opening is looked for: a window is open every day, so two days always find
# one when the zones' windows overlap at all.
_LOOKAHEAD_DAYS = 3

# Area codes of Florida and Oklahoma, whose laws (Fla. Stat. 501.616, Okla. Stat. 15-775C.1) allow
# telephone solicitation from 08:00 to 20:00 only.
FLORIDA_AREA_CODES: tuple[int, ...] = (239, 305, 321, 324, 352, 386, 407, 448, 561, 645, 656, 689)
FLORIDA_AREA_CODES += (727, 728, 754, 772, 786, 813, 850, 863, 904, 941, 954)
OKLAHOMA_AREA_CODES = (405, 539, 572, 580, 918)


@dataclass(frozen=True)
class Window:
    """A daily local-time window, start included, end excluded ("24:00" is midnight)."""

    start: time
    end: time | None  # None: until midnight

    @classmethod
    def parse(cls, text: str) -> Window:
        match = _WINDOW.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a window like 08:00-21:00")
        start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
        if end_h == 24 and end_m != 0:
            raise ValueError(f"{text!r} ends after 24:00")
        end = None if end_h == 24 else time(end_h, end_m)
        if end is not None and end <= time(start_h, start_m):
            raise ValueError(f"{text!r} must end after it starts (windows do not cross midnight)")
        return cls(time(start_h, start_m), end)

    def contains(self, moment: time) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True)
class RegionalWindow:
    """A stricter window for numbers starting with one of `prefixes` (E.164, e.g. "+1305")."""

    name: str
    window: Window
    prefixes: tuple[str, ...]

    def applies_to(self, phone: str) -> bool:
        return phone.startswith(self.prefixes)


def default_regions() -> list[RegionalWindow]:
    window = Window.parse("08:00-20:00")
    return [
        RegionalWindow("US-FL", window, tuple(f"+1{code}" for code in FLORIDA_AREA_CODES)),
        RegionalWindow("US-OK", window, tuple(f"+1{code}" for code in OKLAHOMA_AREA_CODES)),
    ]


@cache
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def candidate_zones(phone: str) -> list[ZoneInfo]:
    """The zones a number may be in (E.164 in); empty when phonenumbers cannot tell."""
    names = phone_timezones.time_zones_for_number(phonenumbers.parse(phone))
    zones = [_zone(name) for name in names if name != UNKNOWN_ZONE]
    return [zone for zone in zones if zone is not None]


@dataclass(frozen=True)
class SendTime:
    """When a campaign message to a number may go: `at` is now when the window is open (not held),
    or the instant it opens; None when no instant is inside every window (zones too far apart)."""

    at: datetime | None
    held: bool
    window: Window
    zones: tuple[str, ...]


class QuietHours:
    def __init__(self, window: Window, regions: Iterable[RegionalWindow] = ()) -> None:
        self.window = window
        self.regions = list(regions)

    def windows_for(self, phone: str) -> list[Window]:
        return [self.window, *(region.window for region in self.regions if region.applies_to(phone))]

    def effective_window(self, phone: str) -> Window:
        """Every window that applies, at once: the latest start and the earliest end."""
        windows = self.windows_for(phone)
        ends = [window.end for window in windows if window.end is not None]
        return Window(max(window.start for window in windows), min(ends) if ends else None)

    def send_time(self, phone: str, now: datetime) -> SendTime:
        window = self.effective_window(phone)
        zones = candidate_zones(phone)
        names = tuple(str(zone) for zone in zones)
        if not zones or (window.end is not None and window.end <= window.start):
            return SendTime(None, True, window, names)
        now = now.astimezone(UTC)
        if _inside(window, zones, now):
            return SendTime(now, False, window, names)
        # The window opens when its start comes round in one zone while it is open in the others:
        # the earliest such start is the answer.
        openings = sorted(
            opening
            for zone in zones
            for days in range(_LOOKAHEAD_DAYS)
            if (opening := _local_start(window, zone, now, days)) > now
        )
        for opening in openings:
            if _inside(window, zones, opening):
                return SendTime(opening, True, window, names)
        return SendTime(None, True, window, names)


def _inside(window: Window, zones: list[ZoneInfo], moment: datetime) -> bool:
    return all(window.contains(moment.astimezone(zone).time()) for zone in zones)


def _local_start(window: Window, zone: ZoneInfo, now: datetime, days: int) -> datetime:
    local_day = (now.astimezone(zone) + timedelta(days=days)).date()
    return datetime.combine(local_day, window.start, tzinfo=zone).astimezone(UTC)
