"""Deviations: where a unit's period differs from its own last 12 months, with the reason in
words. Computed from the datasets across periods (``vardfil.analysis``); what counts as a
deviation is data (``vardfil/deviations.toml``).

- **Components**: per unit and underlag component (corrections left out), the period's amount
  against the median of the unit's previous 12 closed periods; flagged when it is further from the
  median than ``spread_factor`` median absolute deviations *and* more than ``min_relative`` of the
  median. Robust statistics on purpose: one odd month in the history does not hide the next.
- **Rejected share**: above ``above``, or ``jump`` above the unit's own median.
- **Visits per listed person** (VGP): accepted rows over the persons listed at the unit, the same
  robust test as a component.
- **Deliveries**: late or missing ``count`` times within the period and the 12 before.
"""

from __future__ import annotations

import statistics
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from filespec.calendar import Period
from vardfil import analysis
from vardfil.swedish import kronor, number, percent

THRESHOLDS = Path(__file__).parent / "deviations.toml"
HISTORY = 12


@dataclass(frozen=True, kw_only=True)
class Flag:
    """One deviation of one unit in one period."""

    unit_hsaid: str
    what: str  # a component code, "avvisade rader" or "leverans"
    value: float
    median: float | None
    reason: str  # Swedish, for the analyst


def thresholds(path: Path | None = None) -> dict[str, Any]:
    """The thresholds (``vardfil/deviations.toml`` unless another file is given)."""
    return tomllib.loads((path or THRESHOLDS).read_text(encoding="utf-8"))


def _kr(v: float) -> str:
    return kronor(Decimal(str(round(v, 2))))


def _two(v: float) -> str:
    return number(Decimal(str(v)).quantize(Decimal("0.01")))


def deviations(period: Period, *, root: Path | None = None, limits: dict[str, Any] | None = None) -> list[Flag]:
    """The flags of a closed period, unit by unit (components, rejected share, deliveries)."""
    p = Period.parse(period)
    limits = limits or thresholds()
    window = [str(p.shift(-i)) for i in range(HISTORY, 0, -1)]
    flags: list[Flag] = []
    # The datasets are read as pandas frames (the analysts' API) and then walked as plain records,
    # unit by unit: pandas filters per unit were 0.45 s of a 300-unit month's ~0.6 s region
    # workbook (0.02 s now; the same flags for every period and threshold of the tests' year).
    # Grouping, order and arithmetic are pandas' own: groups sorted by key, missing keys and
    # amounts left out, Decimal amounts summed exactly, medians as the mean of the middle two.
    lines = analysis.underlag([*window, str(p)], root=root)
    if not lines.empty:
        sums: dict[tuple[str, str], dict[str, Decimal | int]] = {}
        for unit, component, q, amount, corrected in zip(
            lines["unit_hsaid"],
            lines["component"],
            lines["period"],
            lines["amount"],
            lines["corrected_period"],
            strict=True,
        ):
            if not _missing(corrected) or _missing(unit) or _missing(component) or _missing(q):
                continue
            per = sums.setdefault((unit, component), {})
            per[q] = per.get(q, 0) + (0 if _missing(amount) else amount)
        c = limits["component"]
        for (unit, component), totals in sorted(sums.items()):
            by_period = {k: float(v) for k, v in totals.items()}
            if str(p) not in by_period:
                continue
            history = [by_period[q] for q in window if q in by_period]
            if len(history) < c["min_history"]:
                continue
            value, median = by_period[str(p)], statistics.median(history)
            mad = statistics.median(abs(h - median) for h in history)
            change = value - median
            if abs(change) > c["spread_factor"] * mad and abs(change) > c["min_relative"] * abs(median):
                word = "högre" if change > 0 else "lägre"
                flags.append(
                    Flag(
                        unit_hsaid=str(unit),
                        what=str(component),
                        value=value,
                        median=median,
                        # The component is named beside the reason (the flag's "what"): not again here.
                        reason=f"{_kr(abs(change))} {word} än enhetens median för de "
                        f"senaste {len(history)} perioderna ({_kr(median)})",
                    )
                )
    deliv = analysis.deliveries([*window, str(p)], root=root)
    if not deliv.empty:
        units: dict[str, list[dict[str, Any]]] = {}
        for row in deliv.to_dict("records"):
            if not _missing(row["unit_hsaid"]):
                units.setdefault(row["unit_hsaid"], []).append(row)
        for unit, rows in sorted(units.items()):
            flags.extend(_delivery_flags(str(unit), rows, p, window, limits, has_listing="listed" in deliv.columns))
    return flags


def _missing(value: Any) -> bool:
    """pandas' idea of a missing value (None, NaN, NaT, NA), for one value, without pandas."""
    try:
        return value is None or bool(value != value)
    except TypeError:  # pandas' NA: its comparisons give NA, which has no truth value
        return True


def _delivery_flags(
    unit: str,
    rows: list[dict[str, Any]],
    period: Period,
    window: list[str],
    limits: dict[str, Any],
    *,
    has_listing: bool,
) -> list[Flag]:
    """A unit's rejected-share, visits-per-listed and delivery flags, from its delivery rows of the
    period and the 12 before (in period order)."""
    r, d, v = limits["rejected_share"], limits["delivery"], limits["visits_per_listed"]
    flags: list[Flag] = []
    shares = [row["rejected_share"] for row in rows if row["period"] == period and not _missing(row["rejected_share"])]
    if shares:
        value = float(shares[0])
        earlier = [
            float(row["rejected_share"])
            for row in rows
            if row["period"] != period and not _missing(row["rejected_share"])
        ]
        med = statistics.median(earlier) if earlier else None
        if value > r["above"] or (med is not None and value - med > r["jump"]):
            flags.append(
                Flag(
                    unit_hsaid=unit,
                    what="avvisade rader",
                    value=value,
                    median=med,
                    reason=f"{percent(value)} av raderna avvisades"
                    + (f" (enhetens median {percent(med)})" if med is not None else ""),
                )
            )
    if has_listing:
        ratio = {
            row["period"]: row["rows_accepted"] / row["listed"]
            for row in rows
            # Not missing, not zero (REH units have no listing).
            if not _missing(row["listed"]) and row["listed"] and not _missing(row["rows_accepted"])
        }
        history = [ratio[q] for q in window if q in ratio]
        if period in ratio and len(history) >= v["min_history"]:
            value, med = ratio[period], statistics.median(history)
            mad = statistics.median(abs(h - med) for h in history)
            if abs(value - med) > v["spread_factor"] * mad and abs(value - med) > v["min_relative"] * med:
                text = f"{_two(value)} besök per listad person (enhetens median {_two(med)})"
                flags.append(Flag(unit_hsaid=unit, what="besök per listad", value=value, median=med, reason=text))
    bad = [row for row in rows if row["delivery"] in ("sen", "saknas")]
    if len(bad) >= d["count"] and any(row["period"] == period for row in rows):
        kinds = ", ".join(f"{row['period']} {row['delivery']}" for row in bad)
        flags.append(
            Flag(
                unit_hsaid=unit,
                what="leverans",
                value=float(len(bad)),
                median=None,
                reason=f"Sen eller saknad fil {len(bad)} gånger på {len(rows)} perioder: {kinds}",
            )
        )
    return flags
