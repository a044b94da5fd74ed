"""The submission window: third vardag from the pinned holidays package, 15:00 Europe/Stockholm."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filespec.calendar import is_vardag, nth_vardag, parse_instant, window_for

# Third vardag of every month 2025–2027, checked by hand against the calendar (holidays in the
# first week: New Year's Day, Epiphany, May Day, Easter 2026, Ascension 2027, National Day).
THIRD_VARDAG = {
    2025: [7, 5, 5, 3, 6, 4, 3, 5, 3, 3, 5, 3],
    2026: [7, 4, 4, 7, 6, 3, 3, 5, 3, 5, 4, 3],
    2027: [7, 3, 3, 5, 5, 3, 5, 4, 3, 5, 3, 3],
}


@pytest.mark.parametrize(("year", "month"), [(y, m) for y in THIRD_VARDAG for m in range(1, 13)])
def test_third_vardag_regression(year, month):
    assert nth_vardag(year, month, 3) == dt.date(year, month, THIRD_VARDAG[year][month - 1])


@pytest.mark.parametrize("day", ["2026-06-19", "2026-12-24", "2026-12-31", "2026-06-06", "2026-11-01"])
def test_eves_and_holidays_are_not_vardagar(day):
    assert not is_vardag(dt.date.fromisoformat(day))


@pytest.mark.parametrize(
    ("period", "deadline"),
    [
        ("2025-12", "2026-01-07T15:00:00+01:00"),  # CET
        ("2026-03", "2026-04-07T15:00:00+02:00"),  # CEST, Easter in the window
        ("2026-04", "2026-05-06T15:00:00+02:00"),
        ("2026-09", "2026-10-05T15:00:00+02:00"),
        ("2026-10", "2026-11-04T15:00:00+01:00"),  # after the DST change of 25 October
        ("2026-12", "2027-01-07T15:00:00+01:00"),
    ],
)
def test_deadline_with_local_offset(period, deadline):
    assert window_for(period).deadline.isoformat() == deadline


def test_window_opens_at_local_midnight_across_dst():
    w = window_for("2026-10")
    assert w.opens.isoformat() == "2026-11-01T00:00:00+01:00"
    assert w.before_open(parse_instant("2026-10-31T22:59:59Z"))
    assert not w.before_open(parse_instant("2026-10-31T23:00:00Z"))
    assert window_for("2026-02").opens.isoformat() == "2026-03-01T00:00:00+01:00"
    assert window_for("2026-03").opens.isoformat() == "2026-04-01T00:00:00+02:00"


def test_on_time_is_strictly_before_the_deadline():
    w = window_for("2026-09")
    assert w.on_time(parse_instant("2026-10-05T12:59:59Z"))
    assert not w.on_time(parse_instant("2026-10-05T13:00:00Z"))


def test_corrections_close_twelve_months_later_same_wall_time():
    w = window_for("2025-08")  # deadline 2025-09-03 15:00 CEST
    assert w.corrections_close.isoformat() == "2026-09-03T15:00:00+02:00"
    assert not w.closed_for_corrections(parse_instant("2026-09-03T15:00:00+02:00"))
    assert w.closed_for_corrections(parse_instant("2026-09-03T15:00:01+02:00"))


@given(st.integers(2025, 2035), st.integers(1, 12))
def test_deadline_is_a_vardag_in_the_first_ten_days_at_15(year, month):
    w = window_for(f"{year:04d}-{month:02d}")
    local = w.deadline
    assert is_vardag(local.date()) and local.day <= 10 and local.time() == dt.time(15, 0)
    assert w.opens < w.deadline < w.corrections_close
    assert sum(is_vardag(local.date().replace(day=d)) for d in range(1, local.day + 1)) == 3


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        parse_instant("2026-10-05T14:00:00")


# --- Period: the one value for a reporting period ------------------------------------------------

from filespec.calendar import Period, deadline_before_or_at, deadline_on_or_after  # noqa: E402
from filespec.errors import InvalidPeriod, VardfilError  # noqa: E402


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "202610", "26-10", "2026/10", "", "abcd-ef", 202610])
def test_period_refuses_what_is_not_a_month(text):
    with pytest.raises(InvalidPeriod) as caught:
        Period.parse(text)
    # Bad input from a form or argparse: both a ValueError and one of vardfil's own exceptions.
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, VardfilError)


def test_period_names_its_neighbours_bounds_and_window():
    p = Period.parse("2026-12")
    assert (str(p), p.compact, str(p.previous()), str(p.next())) == ("2026-12", "202612", "2026-11", "2027-01")
    assert p.bounds == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert Period.parse("2028-02").last_day == dt.date(2028, 2, 29)
    assert p.deadline == window_for("2026-12").deadline == p.window.deadline
    assert Period.parse_compact("202601") == Period(2026, 1) < Period(2026, 2)


@given(st.integers(1900, 2200), st.integers(1, 12), st.integers(-400, 400))
def test_period_arithmetic_round_trips(year, month, months):
    p = Period(year, month)
    assert Period.parse(str(p)) == p
    assert p.shift(months).shift(-months) == p
    assert (p.shift(months) > p) == (months > 0) or months == 0


@given(st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 11, 30), timezones=st.just(dt.UTC)))
def test_the_timetable_deadlines_bracket_every_instant(instant):
    before, after = deadline_before_or_at(instant), deadline_on_or_after(instant)
    assert before <= instant <= after
    # Both are deadlines of consecutive periods (or the same one when the instant is a deadline).
    periods = {Period.of_window(before), Period.of_window(after)}
    assert before == Period.of_window(before).deadline and after == Period.of_window(after).deadline
    assert (len(periods) == 1 and before == after) or max(periods) == min(periods).next()


def test_a_typed_wall_time_is_swedish_time_and_never_guessed():
    from filespec.calendar import parse_wall_time

    assert parse_wall_time("2026-11-06T15:00").isoformat() == "2026-11-06T15:00:00+01:00"
    assert parse_wall_time("2026-07-06 15:00").isoformat() == "2026-07-06T15:00:00+02:00"
    assert parse_wall_time("2026-11-06T14:00:00Z").isoformat() == "2026-11-06T15:00:00+01:00"
    # 2026-10-25 02:30 happens twice (summer time ends); with an offset it is one instant.
    with pytest.raises(ValueError, match="twice"):
        parse_wall_time("2026-10-25T02:30")
    assert parse_wall_time("2026-10-25T02:30+01:00").utcoffset().total_seconds() == 3600
    with pytest.raises(ValueError, match="does not exist"):  # 2026-03-29 02:30 is skipped
        parse_wall_time("2026-03-29T02:30")
