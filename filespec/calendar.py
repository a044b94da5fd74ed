"""The region calendar: reporting periods, vardagar and the submission window of a period.

Period P's window opens 00:00 on the 1st of month P+1 and closes 15:00 on the third vardag of
month P+1, Europe/Stockholm (ERSATTNINGSMODELL.md section 1). A vardag is Monday–Friday that is
neither an allmän helgdag nor Midsommarafton, Julafton or Nyårsafton (Lag 1930:173): exactly the
``public`` and ``de_facto`` categories of the pinned ``holidays`` package. All arithmetic is done
on local wall time and then attached to the zone, so it is correct across DST changes.

:class:`Period` is the one value for a reporting period: nothing else in vardfil parses
``"2026-10"``. Storage and JSON keep the text form (``str(period)``); code that computes with a
period parses it here.

The calendar is published rules, like the rest of ``filespec``, and sits in the bottom layer so the
unit register (active in P), the versioned data (valid for P), the validators (F08, F10, on_time),
the close and the Airflow timetable all read the same one. It imports neither pandas nor polars:
the Airflow scheduler loads it through the timetable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from filespec.errors import InvalidPeriod

STOCKHOLM = ZoneInfo("Europe/Stockholm")
DEADLINE_TIME = dt.time(15, 0)
DEADLINE_VARDAG = 3
CORRECTION_MONTHS = 12


@cache
def _swedish_holidays(year: int) -> holidays.HolidayBase:
    # holidays exports its countries lazily, which its type information does not show.
    days: holidays.HolidayBase = holidays.country_holidays(
        "SE", years=year, categories=("public", "de_facto"), include_sundays=False
    )
    return days


def is_vardag(day: dt.date) -> bool:
    """True for Monday–Friday that is not a Swedish public holiday or de-facto holiday eve."""
    return day.weekday() < 5 and day not in _swedish_holidays(day.year)


def nth_vardag(year: int, month: int, n: int = DEADLINE_VARDAG) -> dt.date:
    """The n-th vardag of a calendar month."""
    day, seen = dt.date(year, month, 1), 0
    while True:
        if is_vardag(day):
            seen += 1
            if seen == n:
                return day
        day += dt.timedelta(days=1)


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period: one calendar month. Ordered; ``str()`` gives ``YYYY-MM``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (1 <= self.month <= 12 and 1 <= self.year <= 9999):
            raise InvalidPeriod(f"period must be YYYY-MM, got {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str | Period) -> Period:
        """``"YYYY-MM"`` (or a Period, returned as is); :class:`InvalidPeriod` otherwise."""
        if isinstance(text, Period):
            return text
        if not isinstance(text, str) or len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
            raise InvalidPeriod(f"period must be YYYY-MM, got {text!r}")
        return cls(int(text[:4]), int(text[5:]))

    @classmethod
    def parse_compact(cls, text: str) -> Period:
        """``"YYYYMM"``, the form file names use."""
        if len(text) != 6 or not text.isdigit():
            raise InvalidPeriod(f"period must be YYYYMM, got {text!r}")
        return cls(int(text[:4]), int(text[4:]))

    @classmethod
    def of_date(cls, day: dt.date) -> Period:
        """The period a date lies in."""
        return cls(day.year, day.month)

    @classmethod
    def of_window(cls, instant: dt.datetime) -> Period:
        """The period whose window lies in the (Stockholm) month of ``instant``: the month before."""
        local = to_stockholm(instant)
        return cls(local.year, local.month).previous()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    # A period is equal to its own text, and hashes as it: a key made from a row (where the ledger
    # keeps ``YYYY-MM``), from a file's kvittens or from a Period is the same key. Ordering stays
    # between periods: a period is never sorted among strings.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Period):
            return (self.year, self.month) == (other.year, other.month)
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def compact(self) -> str:
        """``YYYYMM``, as in file names and listing files."""
        return f"{self.year:04d}{self.month:02d}"

    def shift(self, months: int) -> Period:
        """The period ``months`` later (earlier when negative)."""
        n = self.year * 12 + (self.month - 1) + months
        return Period(n // 12, n % 12 + 1)

    def previous(self) -> Period:
        """The month before."""
        return self.shift(-1)

    def next(self) -> Period:
        """The month after."""
        return self.shift(1)

    @property
    def first_day(self) -> dt.date:
        """The 1st of the month."""
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        """The last day of the month."""
        return self.next().first_day - dt.timedelta(days=1)

    @property
    def bounds(self) -> tuple[dt.date, dt.date]:
        """(first day, last day)."""
        return self.first_day, self.last_day

    @property
    def window(self) -> Window:
        """The submission window of this period."""
        return window_for(self)

    @property
    def deadline(self) -> dt.datetime:
        """15:00 Europe/Stockholm on the third vardag of the next month."""
        return window_for(self).deadline


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

    def is_open(self, instant: dt.datetime, deadline: dt.datetime | None = None) -> bool:
        """Whether files are on time at ``instant`` (opened, deadline or dispens not yet passed)."""
        return self.opens <= instant < (deadline or self.deadline)


@cache
def window_for(period: str | Period) -> Window:
    """The window of reporting period ``period`` (``"YYYY-MM"`` or a :class:`Period`)."""
    p = Period.parse(period)
    nxt = p.next()
    day = nth_vardag(nxt.year, nxt.month, DEADLINE_VARDAG)
    deadline_wall = dt.datetime.combine(day, DEADLINE_TIME)
    return Window(
        period=str(p),
        opens=dt.datetime(nxt.year, nxt.month, 1, tzinfo=STOCKHOLM),
        deadline=deadline_wall.replace(tzinfo=STOCKHOLM),
        # The third vardag is at most the 7th, so the same date exists a year later.
        corrections_close=deadline_wall.replace(year=nxt.year + CORRECTION_MONTHS // 12, tzinfo=STOCKHOLM),
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


def parse_wall_time(text: str) -> dt.datetime:
    """An instant a person typed: with an offset as given; without one, as a wall time in
    Europe/Stockholm (what a date-and-time field sends). A wall time the clocks pass twice (the
    autumn change) or skip (the spring change) names no single instant and is refused."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is not None:
        return to_stockholm(value)
    first, second = value.replace(tzinfo=STOCKHOLM, fold=0), value.replace(tzinfo=STOCKHOLM, fold=1)
    if first.astimezone(dt.UTC).astimezone(STOCKHOLM).replace(tzinfo=None) != value:
        raise ValueError(f"{value:%Y-%m-%d %H:%M} does not exist in Swedish time (the clocks skip it)")
    if first.utcoffset() != second.utcoffset():
        raise ValueError(f"{value:%Y-%m-%d %H:%M} happens twice in Swedish time: give the offset (+01:00 or +02:00)")
    return first


def period_of_window(instant: dt.datetime) -> str:
    """The period (text) whose window contains the month of ``instant``: the previous month."""
    return str(Period.of_window(instant))


def deadline_on_or_after(instant: dt.datetime) -> dt.datetime:
    """The first close deadline at or after an instant (the Airflow timetable's next run)."""
    period = Period.of_window(instant)  # the period whose window lies in this month
    deadline = period.deadline
    return deadline if deadline >= instant else period.next().deadline


def deadline_before_or_at(instant: dt.datetime) -> dt.datetime:
    """The latest close deadline at or before an instant (what a manual close run closes)."""
    period = Period.of_window(instant)
    deadline = period.deadline
    return deadline if deadline <= instant else period.previous().deadline
