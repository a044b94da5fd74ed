"""Deviation flags on a year of planted stories: a unit that grows, one that delivers late twice,
one whose rejected share jumps, and steady units that must not be flagged. The thresholds are data."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import polars as pl
import pytest

from filespec.calendar import Period
from vardfil.deviations import deviations, thresholds
from vardfil.publish.datasets import publish_period_datasets, write_underlag_parquet

GROWS, STEADY, LATE, REJECTS, NEW, BUSY = (f"SE2321000131-E00000000{n}" for n in (1101, 1102, 1103, 1104, 1105, 1106))
PERIODS = [str(Period(2025, 10).shift(i)) for i in range(13)]  # 2025-10 … 2026-10


def _delivery(
    unit: str, period: str, delivery: str = "i tid", share: float = 0.01, rows: int = 1000, listed: int | None = 4000
) -> dict:
    return {
        "unit_hsaid": unit,
        "file_type": "VGP",
        "namn": unit[-4:],
        "receipt_id": None,
        "file_name": None,
        "received_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "on_time": delivery == "i tid",
        "delivery": delivery,
        "rows_total": rows,
        "rows_accepted": int(rows * (1 - share)),
        "rows_rejected": int(rows * share),
        "rejected_share": share,
        "listed": listed,
    }


@pytest.fixture
def year(tmp_path):
    rng = random.Random(7)
    for i, period in enumerate(PERIODS):
        last = i == len(PERIODS) - 1
        lines, deliv = [], []
        for unit in (GROWS, STEADY, LATE, REJECTS):
            amount = Decimal(100000 + rng.randint(-3000, 3000))
            if unit == GROWS and last:
                amount = Decimal(160000)  # the story: a unit that grows
            lines.append(
                {
                    "period": period,
                    "file_type": "VGP",
                    "unit_hsaid": unit,
                    "component": "ALDER_KON",
                    "quantity": None,
                    "unit_price": None,
                    "amount": amount,
                    "corrected_period": None,
                }
            )
            late = unit == LATE and period in ("2026-03", "2026-10")  # late twice
            share = 0.08 if unit == REJECTS and last else 0.01 + rng.random() * 0.005
            deliv.append(_delivery(unit, period, "sen" if late else "i tid", share, rows=1000 + rng.randint(-30, 30)))
        # The story of visits: about 0.25 visits per listed person a month, then twice that.
        deliv.append(_delivery(BUSY, period, share=0.01, rows=2000 if last else 1000 + rng.randint(-30, 30)))
        if i >= len(PERIODS) - 2:  # a unit with two periods of history only
            lines.append(
                {
                    "period": period,
                    "file_type": "VGP",
                    "unit_hsaid": NEW,
                    "component": "ALDER_KON",
                    "quantity": None,
                    "unit_price": None,
                    "amount": Decimal(50000 if not last else 90000),
                    "corrected_period": None,
                }
            )
        out = tmp_path / period
        write_underlag_parquet(lines, out / "underlag.parquet")
        pl.DataFrame().write_parquet(out / "besok.parquet")
        publish_period_datasets(output=tmp_path, period=period, deliveries=deliv)
    return tmp_path / "datasets"


def test_the_planted_stories_are_flagged_and_nothing_else(year):
    flags = deviations("2026-10", root=year)
    got = {(f.unit_hsaid, f.what) for f in flags}
    assert got == {(GROWS, "ALDER_KON"), (LATE, "leverans"), (REJECTS, "avvisade rader"), (BUSY, "besök per listad")}
    grows = next(f for f in flags if f.unit_hsaid == GROWS)
    assert "högre än enhetens median" in grows.reason and " kr" in grows.reason
    late = next(f for f in flags if f.what == "leverans")
    assert "2026-03 sen" in late.reason and "2026-10 sen" in late.reason
    assert "8,0 % av raderna avvisades" in next(f.reason for f in flags if f.what == "avvisade rader")
    assert "besök per listad person (enhetens median 0,25)" in next(f.reason for f in flags if f.unit_hsaid == BUSY)


def test_a_period_before_the_stories_has_no_flags(year):
    assert deviations("2026-09", root=year) == []


def test_the_thresholds_are_data(year):
    limits = thresholds()
    limits["component"]["min_relative"] = 0.7  # a 60 % rise is no longer news
    limits["delivery"]["count"] = 3
    limits["visits_per_listed"]["min_relative"] = 2.0
    got = {(f.unit_hsaid, f.what) for f in deviations("2026-10", root=year, limits=limits)}
    assert got == {(REJECTS, "avvisade rader")}


def test_the_cli_answers_only_for_a_closed_period(app_env):
    import json

    from conftest import cli

    from sample_data import SAMPLE_DIR

    assert cli("deviations", "2026-10")[0] == 2  # not closed
    for name in ("VGP_SE2321000131-E000000001001_202610_02.csv", "REH_SE2321000131-E000000002002_202610_01.csv"):
        cli("submit", str(SAMPLE_DIR / "files" / name), "--received-at", "2026-11-02T10:00:00+01:00")
    assert cli("close", "2026-10", "--at", "2026-11-04T15:00:00+01:00")[0] == 0
    code, out = cli("deviations", "2026-10", "--json")
    assert code == 0 and json.loads(out) == []  # one month: no history to deviate from


def test_missing_is_what_pandas_calls_missing():
    import math

    import numpy as np
    import pandas as pd

    from vardfil.deviations import _missing

    values = [
        None,
        math.nan,
        np.nan,
        pd.NA,
        pd.NaT,
        Decimal("NaN"),
        "",
        "x",
        0,
        0.0,
        Decimal("1.5"),
        dt.date(2026, 1, 1),
    ]
    assert [_missing(v) for v in values] == [bool(pd.isna(v)) for v in values]
