"""Deviations: where a unit's period differs from its own last 12 months, with the reason in
words. Computed from the datasets across periods (``vardfil.datasets``); what counts as a
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
from vardfil import datasets
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


def deviations(period: str, *, root: Path | None = None, limits: dict[str, Any] | None = None) -> list[Flag]:
    """The flags of a closed period, unit by unit (components, rejected share, deliveries)."""
    p = Period.parse(period)
    limits = limits or thresholds()
    window = [str(p.shift(-i)) for i in range(HISTORY, 0, -1)]
    flags: list[Flag] = []
    lines = datasets.underlag([*window, str(p)], root=root)
    if not lines.empty:
        own = lines[lines["corrected_period"].isna()]
        sums = own.groupby(["unit_hsaid", "component", "period"])["amount"].sum()
        c = limits["component"]
        for (unit, component), series in sums.groupby(level=[0, 1]):
            by_period = {k[2]: float(v) for k, v in series.items()}
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
    deliv = datasets.deliveries([*window, str(p)], root=root)
    if not deliv.empty:
        r, d = limits["rejected_share"], limits["delivery"]
        for unit, rows in deliv.groupby("unit_hsaid"):
            now = rows[rows["period"] == str(p)]
            before = rows[rows["period"] != str(p)]
            share = now["rejected_share"].dropna()
            if not share.empty:
                value = float(share.iloc[0])
                med = (
                    float(before["rejected_share"].dropna().median())
                    if before["rejected_share"].notna().any()
                    else None
                )
                if value > r["above"] or (med is not None and value - med > r["jump"]):
                    flags.append(
                        Flag(
                            unit_hsaid=str(unit),
                            what="avvisade rader",
                            value=value,
                            median=med,
                            reason=f"{percent(value)} av raderna avvisades"
                            + (f" (enhetens median {percent(med)})" if med is not None else ""),
                        )
                    )
            v = limits["visits_per_listed"]
            if "listed" in rows.columns:
                ratio = {
                    q: a / n
                    for q, a, n in zip(rows["period"], rows["rows_accepted"], rows["listed"], strict=True)
                    if n == n and n and a == a  # n == n: not NaN (REH units have no listing)
                }
                history = [ratio[q] for q in window if q in ratio]
                if str(p) in ratio and len(history) >= v["min_history"]:
                    value, med = ratio[str(p)], statistics.median(history)
                    mad = statistics.median(abs(h - med) for h in history)
                    if abs(value - med) > v["spread_factor"] * mad and abs(value - med) > v["min_relative"] * med:
                        text = f"{_two(value)} besök per listad person (enhetens median {_two(med)})"
                        flags.append(
                            Flag(unit_hsaid=str(unit), what="besök per listad", value=value, median=med, reason=text)
                        )
            bad = rows[rows["delivery"].isin(["sen", "saknas"])]
            if len(bad) >= d["count"] and str(p) in set(rows["period"]):
                kinds = ", ".join(f"{q} {s}" for q, s in zip(bad["period"], bad["delivery"], strict=True))
                flags.append(
                    Flag(
                        unit_hsaid=str(unit),
                        what="leverans",
                        value=float(len(bad)),
                        median=None,
                        reason=f"Sen eller saknad fil {len(bad)} gånger på {len(rows)} perioder: {kinds}",
                    )
                )
    return flags
