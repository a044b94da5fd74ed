"""The submission window (inlämningsfönster) of a reporting period.

Period P's window opens 00:00 on the 1st of month P+1 and closes 15:00 on the third vardag of
month P+1, Europe/Stockholm. A vardag is Monday–Friday that is neither an allmän helgdag nor
Midsommarafton, Julafton or Nyårsafton (Lag 1930:173): exactly the ``public`` and ``de_facto``
categories of the pinned ``holidays`` package. All arithmetic is done on local wall time and then
attached to the zone, so it is correct across DST changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import holidays

STOCKHOLM = ZoneInfo("Europe/Stockholm")
DEADLINE_TIME = dt.time(15, 0)
CORRECTION_MONTHS = 12


@cache
def _swedish_holidays(year: int) -> holidays.HolidayBase:
    return holidays.Sweden(years=year, include_sundays=False, categories=("public", "de_facto"))


def is_vardag(day: dt.date) -> bool:
    """True for Monday–Friday that is not a Swedish public holiday or de-facto holiday eve."""
    return day.weekday() < 5 and day not in _swedish_holidays(day.year)


def nth_vardag(year: int, month: int, n: int = 3) -> dt.date:
    """The n-th vardag of a calendar month."""
    day, seen = dt.date(year, month, 1), 0
    while True:
        if is_vardag(day):
            seen += 1
            if seen == n:
                return day
        day += dt.timedelta(days=1)


def parse_period(period: str) -> tuple[int, int]:
    """(year, month) of "YYYY-MM"; ValueError when it is not a real month."""
    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    y, m = int(period[:4]), int(period[5:])
    if not 1 <= m <= 12:
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    return y, m


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True, kw_only=True)
class Window:
    """The submission window of one period, as aware datetimes in Europe/Stockholm."""

    period: str
    opens: dt.datetime
    deadline: dt.datetime
    corrections_close: dt.datetime  # F10 fires for anything later

    def on_time(self, received_at: dt.datetime, deadline: dt.datetime | None = None) -> bool:
        """Reading 1: strictly before the deadline (or before a dispens deadline if given)."""
        return received_at < (deadline or self.deadline)

    def before_open(self, received_at: dt.datetime) -> bool:
        """F08: received before 00:00 on the 1st of the next month."""
        return received_at < self.opens

    def closed_for_corrections(self, received_at: dt.datetime) -> bool:
        """F10: later than the deadline plus 12 calendar months, same local wall time."""
        return received_at > self.corrections_close


@cache
def window_for(period: str) -> Window:
    """The window of reporting period ``period`` ("YYYY-MM")."""
    y, m = _next_month(*parse_period(period))
    day = nth_vardag(y, m, 3)
    deadline_wall = dt.datetime.combine(day, DEADLINE_TIME)
    return Window(
        period=period,
        opens=dt.datetime(y, m, 1, tzinfo=STOCKHOLM),
        deadline=deadline_wall.replace(tzinfo=STOCKHOLM),
        # The third vardag is at most the 7th, so the same date exists a year later.
        corrections_close=deadline_wall.replace(year=y + 1, tzinfo=STOCKHOLM),
    )


def to_stockholm(instant: dt.datetime) -> dt.datetime:
    """An aware instant shown in Europe/Stockholm; naive input is refused (it is ambiguous)."""
    if instant.tzinfo is None:
        raise ValueError("received_at must carry a UTC offset")
    return instant.astimezone(STOCKHOLM)


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO 8601 instant with offset (``Z`` allowed) into Europe/Stockholm time."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return to_stockholm(value)


def period_of_window(instant: dt.datetime) -> str:
    """The period whose window contains the month of ``instant``: the previous calendar month."""
    local = to_stockholm(instant)
    y, m = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return f"{y:04d}-{m:02d}"
