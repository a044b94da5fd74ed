"""What units and analysts look at during the month, computed once for every front door: the
payment preview of a file, the diff of a resubmission, a unit's published underlag and the
analysts' month board.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from filespec import Unit, load_listing, price_list_for
from filespec.calendar import Period
from reports import UnderlagLine, total, underlag_for
from validators.identifiers import mask_identifiers
from vardfil import analysis
from vardfil.analysis import dataset_root
from vardfil.app import App
from vardfil.delivery import UnitStatus, period_status
from vardfil.ledger import Approval, FileKey, ReceivedFile, UnderlagLineRow
from vardfil.publish.inputs import read_accepted, reh_history


def replaced_by(app: App, f: ReceivedFile) -> ReceivedFile | None:
    """The file a resubmission replaces: the slot's gällande file as of its arrival, itself left out."""
    if f.unit_hsaid is None or f.file_type is None or f.period is None:
        return None
    key = FileKey(unit_hsaid=f.unit_hsaid, file_type=f.file_type, period=Period.parse(f.period))
    return app.ledger.files.gallande(key, as_of=f.received_at, excluding=f)


def record_diff(app: App, new: ReceivedFile, old: ReceivedFile) -> dict[str, Any]:
    """Rows added, removed and changed between two files' accepted rows, keyed by besok_id."""

    def rows(f: ReceivedFile) -> pl.DataFrame:
        if f.accepted_path is None:
            return pl.DataFrame(schema={"besok_id": pl.Utf8})
        return pl.read_parquet(app.store.resolve(f.accepted_path)).drop("rad")

    # Keyed by besok_id, the unit's own key for a visit: row numbers shift when a row is added.
    a, b = rows(old), rows(new)
    added = b.join(a, on="besok_id", how="anti")["besok_id"].to_list()
    removed = a.join(b, on="besok_id", how="anti")["besok_id"].to_list()
    common = [c for c in b.columns if c in a.columns and c != "besok_id"]
    joined = b.join(a, on="besok_id", how="inner", suffix="__old")
    changed_mask = (
        pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}__old")) for c in common]) if common else pl.lit(False)
    )
    changed = joined.filter(changed_mask)["besok_id"].to_list()
    # A besok_id is the unit's own text: a person number used as one is masked on the page.
    return {"old": old, "added": _masked_ids(added), "removed": _masked_ids(removed), "changed": _masked_ids(changed)}


def _masked_ids(ids: list[str]) -> list[str]:
    shown = mask_identifiers(pl.DataFrame({"besok_id": ids}, schema={"besok_id": pl.Utf8}), "besok_id")
    return [str(v) for v in shown["besok_id"].to_list()]


def preview(app: App, f: ReceivedFile, now: dt.datetime) -> dict[str, Any] | None:
    """The underlag this file would give if it stayed gällande (not for AVVISAD files)."""
    if f.status == "AVVISAD" or f.unit_hsaid is None or f.period is None:
        return None
    unit = app.reference.units.get(f.unit_hsaid)
    if unit is None:
        return None
    accepted = read_accepted(app, f)
    period = Period.parse(f.period)
    # The REH first-visit add-on depends on earlier periods as they stand now: the preview is what
    # the close would pay if nothing else arrived.
    history = reh_history(app, unit, period, now) if unit.filtyp == "REH" else None
    lines: list[UnderlagLine] = underlag_for(
        unit=unit,
        period=period,
        accepted=accepted,
        listing=load_listing(app.reference.root, period),
        history=history,
        prices=price_list_for(period),
    )
    return {"lines": lines, "total": total(lines)}


@dataclass(frozen=True, kw_only=True)
class PublishedUnderlag:
    """One closed period's underlag of a unit, as its page lists it."""

    period: Period
    lines: list[UnderlagLineRow]
    total: Decimal
    answer: Approval | None
    finalised: bool


def unit_underlag_overview(app: App, unit: Unit, *, limit: int = 12) -> list[PublishedUnderlag]:
    """The unit's underlag of the newest closes, with its answer and whether it is finalised."""
    answers = app.ledger.decisions.answers_of_unit(unit.hsaid)
    lines = app.ledger.closes.unit_lines(unit.hsaid)
    out = []
    for pc in app.ledger.closes.recent_closes(limit):
        mine = [ln for ln in lines if ln.close_period == pc.period and ln.file_type == unit.filtyp]
        if mine:
            closed = Period.parse(pc.period)
            state = app.ledger.closes.period_state(closed)
            out.append(
                PublishedUnderlag(
                    period=closed,
                    lines=mine,
                    total=sum((Decimal(x.amount) for x in mine), Decimal(0)),
                    answer=answers.get((pc.period, unit.filtyp)),
                    finalised=state is not None and state.state == "FINALISED",
                )
            )
    return out


def _amounts(lines: list[UnderlagLineRow], *, own_only: bool = False) -> dict[tuple[str, str], Decimal]:
    sums: dict[tuple[str, str], Decimal] = {}
    for ln in lines:
        if own_only and ln.corrected_period is not None:
            continue
        k = (ln.unit_hsaid, ln.file_type)
        sums[k] = sums.get(k, Decimal(0)) + Decimal(ln.amount)
    return sums


@dataclass(frozen=True, kw_only=True)
class BoardRow:
    """One unit on the analysts' month board."""

    unit: Unit
    unit_status: UnitStatus
    status: str  # the delivery as the board shows it: "i tid", "sen" or "saknas"
    file: ReceivedFile | None
    rejected_share: float | None
    amount: Decimal | None  # after the close
    change: Decimal | None  # against the previous period's own lines, when that was closed

    @property
    def dispens(self) -> dt.datetime | None:
        """The unit's extended deadline, if granted."""
        return self.unit_status.dispens


def month_board(app: App, period: Period) -> list[BoardRow]:
    """Every active unit and filtyp of a period: delivery, rejected share and, once closed, amounts."""
    p = Period.parse(period)  # as is, or a caller's text
    closed = app.ledger.closes.period_closed(p)
    amounts = _amounts(app.ledger.closes.underlag_lines(p)) if closed else {}
    prev_lines = app.ledger.closes.underlag_lines(p.previous())
    prev = _amounts(prev_lines, own_only=True)
    rows = []
    for st in period_status(app.ledger, app.reference, p).units:
        f = st.counted_file
        k = (st.unit.hsaid, st.unit.filtyp)
        amount = amounts.get(k, Decimal(0))
        rows.append(
            BoardRow(
                unit=st.unit,
                unit_status=st,
                status=st.delivery.value,
                file=f,
                rejected_share=(f.rows_rejected / f.rows_total) if f and f.rows_total else None,
                amount=amount if closed else None,
                change=(amount - prev.get(k, Decimal(0))) if closed and prev_lines else None,
            )
        )
    return rows


def unit_months(app: App, unit: Unit, *, months: int = 13) -> list[tuple[str, Decimal]]:
    """A unit's own total per closed period for its last ``months`` periods (corrections of
    earlier periods left out), oldest first: what its page draws."""

    closed = app.ledger.closes.closed_periods()
    window = closed[-months:]
    if not window:
        return []
    lines = analysis.underlag(window, root=dataset_root(app.output))
    if lines.empty:
        return []
    mine = lines[
        (lines["unit_hsaid"] == unit.hsaid) & (lines["file_type"] == unit.filtyp) & lines["corrected_period"].isna()
    ]
    sums = mine.groupby("period")["amount"].sum()
    return [(str(q), Decimal(sums[str(q)])) for q in window if str(q) in sums.index]


def period_needing_action(app: App, at: dt.datetime) -> Period:
    """The period an analyst's board opens on: the open window's period once its deadline has
    passed and it is not closed; the one before while it has files and no close yet; else the
    period whose window is open (or opened last)."""
    window = Period.of_window(at)
    if window.deadline <= at and not app.ledger.closes.period_closed(window):
        return window
    before = window.previous()
    if not app.ledger.closes.period_closed(before) and app.ledger.files.files_for_period(before):
        return before
    return window


def board_periods(app: App, p: Period, at: dt.datetime) -> list[Period]:
    """The periods the board offers: every closed one, the open window's and the one shown, newest
    first."""
    shown = {*app.ledger.closes.closed_periods(), Period.of_window(at), p}
    return sorted(shown, reverse=True)
