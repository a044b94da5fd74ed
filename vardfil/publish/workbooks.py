"""Workbooks of a closed period: one per unit, and the region summary for analysts.

Everything is read from what the close recorded (lines, snapshot) and the store (accepted rows,
findings), so rewriting the workbooks never changes a figure.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing import current_process, get_context
from pathlib import Path
from typing import Any

import polars as pl

from filespec import Unit, load_listing, price_list_for
from filespec.calendar import Period
from reports import Component, reh_visits, vgp_visits
from reports.workbooks import Trends, region_workbook, unit_workbook
from validators.identifiers import mask_expr, mask_identifiers
from vardfil import analysis
from vardfil.analysis import dataset_root
from vardfil.app import App
from vardfil.delivery import period_status
from vardfil.deviations import deviations
from vardfil.errors import NotClosed
from vardfil.ledger import ReceivedFile
from vardfil.publish.inputs import UnitListings, reh_history
from vardfil.publish.record import record_published
from vardfil.swedish import component, excel_time, local_time


def _dec(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


def _visit_rows(
    app: App, unit: Unit, period: Period, f: ReceivedFile, at: dt.datetime, listing: pl.DataFrame | None
) -> pl.DataFrame | None:
    """The accepted rows behind the amounts, as the unit workbook shows them (patient ids masked).

    Converted column by column in polars; amounts are exact decimals (never floats)."""
    if f.accepted_path is None:
        return None
    # A person number used as a besok_id is masked like the patient id: the workbook leaves the
    # region's systems (the unit downloads it).
    acc = mask_identifiers(pl.read_parquet(app.store.resolve(f.accepted_path)), "besok_id")
    prices = price_list_for(period)
    common: list[Any] = [
        "rad",
        "besok_id",
        mask_expr(pl.col("patient_id")).alias("patient"),
        pl.col("besoksdatum_dat").alias("besoksdatum"),
        "yrkeskategori",
        "kontakttyp",
    ]

    def ja_nej(c: str) -> pl.Expr:
        return pl.when(pl.col(c)).then(pl.lit("ja")).otherwise(pl.lit("nej")).alias(c)

    if unit.filtyp == "VGP":
        return vgp_visits(acc, listing, unit.hsaid, prices).select(
            *common,
            "folkbokforing_lan",
            ja_nej("listad"),
            pl.col("komponent").fill_null(""),
            pl.col("a_pris").fill_null("0").cast(pl.Decimal(18, 2)).alias("ersattning"),
            "forvantad_avgift",
        )
    # Points are hundredths (integers); kronor = hundredths × price, scaled exactly (polars rounds
    # decimal products to the larger scale, so the product is taken in integers).
    kr = prices.kr_per_kontaktpoang
    scale = max(0, -int(kr.as_tuple().exponent))  # a finite Decimal: the exponent is an int
    h = pl.col("__poang_h")
    return reh_visits(acc, reh_history(app, unit, period, at), prices).select(
        *common,
        ja_nej("tolktillagg"),
        ja_nej("forstabesokstillagg"),
        (h.cast(pl.Decimal(38, 2)) / 100).alias("kontaktpoang"),
        ((h * int(kr.scaleb(scale))).cast(pl.Decimal(38, 2 + scale)) / 10 ** (2 + scale)).alias("ersattning"),
        "forvantad_avgift",
    )


def _rejected_rows(app: App, f: ReceivedFile) -> list[dict[str, Any]]:
    text = app.store.resolve(f.findings_path).read_bytes().decode("utf-8-sig")
    out = []
    for r in csv.DictReader(io.StringIO(text, newline=""), delimiter=";"):
        if r["severity"] == "FEL":
            value = r["value"][1:] if r["value"].startswith("'") else r["value"]
            out.append(
                {
                    "rad": int(r["row"]) if r["row"] else None,
                    "besok_id": r["besok_id"],
                    "regel": r["rule"],
                    "allvarlighet": r["severity"],
                    "falt": r["field"],
                    "varde": value,
                    "meddelande": r["message"],
                }
            )
    return out


def unit_workbook_path(app: App, period: Period, unit: Unit) -> Path:
    """Where a unit's workbook of a period is (or will be) written."""
    return app.output / str(period) / "enheter" / f"{unit.hsaid}_{unit.filtyp}_{period}.xlsx"


def unit_workbook_file(app: App, period: Period, unit: Unit) -> Path | None:
    """A unit's workbook of a closed period, written now if this is the first time it is asked for;
    None when the close has no underlag for the unit. Written from what the close recorded, so it
    is the same workbook whenever it is first asked for (0.1–0.5 s for a unit of the region's
    month, against ~40 s for all 300 at the close: ``benchmarks/RESULTS.md``)."""
    path = unit_workbook_path(app, period, unit)
    if not path.is_file():
        # Two first requests at once both write it; each writes a temporary file and renames it,
        # so a reader sees one whole workbook or the other, and they are the same.
        written = write_unit_workbooks(period, app=app, units=[unit.hsaid])
        if path not in written:
            return None
    return path


@dataclass(frozen=True)
class _Recorded:
    """What a close recorded, which every workbook of the period is written from (never the
    ledger's current state: a workbook rewritten next year shows what the unit approved)."""

    period: Period
    snapshot: dict[str, Any]
    at: dt.datetime
    lines: list[Any]
    files: dict[str, ReceivedFile]

    def entries(self, app: App) -> Iterator[tuple[Unit, ReceivedFile | None, list[dict[str, Any]]]]:
        """Per unit of the close, in its order: the unit, the file the close took, its lines."""
        for entry in self.snapshot["files"]:
            unit = app.reference.units.get(entry["unit_hsaid"])
            if unit is None:
                continue
            f = self.files.get(entry["receipt_id"]) if entry["receipt_id"] else None
            unit_lines = [ln for ln in self.lines if ln.unit_hsaid == unit.hsaid and ln.file_type == unit.filtyp]
            yield (
                unit,
                f,
                [
                    {
                        "component": ln.component,
                        "quantity": _dec(ln.quantity),
                        "unit_price": _dec(ln.unit_price),
                        "amount": Decimal(ln.amount),
                        "corrected_period": ln.corrected_period,
                    }
                    for ln in unit_lines
                ],
            )


def _recorded(app: App, period: Period) -> _Recorded:
    period = Period.parse(period)  # as is, or a caller's text
    pc = app.ledger.closes.close_of(period)
    if pc is None:
        raise NotClosed(f"period {period} is not closed")
    return _Recorded(
        period=period,
        snapshot=json.loads(pc.snapshot),
        at=pc.closed_at,
        lines=app.ledger.closes.underlag_lines(period),
        files={f.receipt_id: f for f in app.ledger.files.files_for_period(period)},
    )


def _meta(unit: Unit, f: ReceivedFile | None, closed: _Recorded) -> dict[str, Any]:
    snapshot = closed.snapshot
    return {
        "namn": unit.namn,
        "unit_hsaid": unit.hsaid,
        "file_type": unit.filtyp,
        "driftform": unit.driftform,
        "period": str(closed.period),
        "file_name": f.file_name if f else None,
        "sha256": f.sha256 if f else None,
        # Instants as date cells (Stockholm wall time: a spreadsheet has no time zones).
        "received_at": excel_time(f.received_at) if f else None,
        "on_time": f.on_time if f else None,
        "spec_version": f.spec_version if f else None,
        "price_list": snapshot["price_list"]["version"],
        "fee_table": snapshot["fee_table"]["version"],
        "closed_at": excel_time(snapshot["at"]),
        "closed_text": local_time(snapshot["at"]),
    }


def write_unit_workbooks(period: Period, *, app: App, units: Collection[str] | None = None) -> list[Path]:
    """(Re)write unit workbooks of a closed period (``units``: these HSA-ids; None: every unit of
    the close); their paths. A unit's workbook is written when it is first asked for
    (``unit_workbook_file``), or all at once by ``vardfil report``."""
    closed = _recorded(app, period)
    period = closed.period
    listings = UnitListings(load_listing(app.reference.root, period))
    # One workbook (a unit's first download) is written here: a pool would only add its start.
    renderer = _Renderer(1 if units is not None and len(units) <= 1 else app.settings.workbook_workers)
    for unit, f, line_dicts in closed.entries(app):
        if units is not None and unit.hsaid not in units:
            continue
        # A file gallrad since the close has no rows left: the workbook keeps its lines and sums.
        present = f if f is not None and f.gallrad_at is None else None
        visits = _visit_rows(app, unit, period, present, closed.at, listings.of(unit.hsaid)) if present else None
        rejected = _rejected_rows(app, present) if present else []
        renderer.add(
            (
                unit_workbook_path(app, period, unit),
                {"meta": _meta(unit, f, closed), "lines": line_dicts, "visits": visits, "rejected": rejected},
            )
        )
        del visits, rejected
    paths = renderer.finish()
    record_published(app, period, paths)
    return paths


def write_region_workbook(period: Period, *, app: App) -> Path:
    """(Re)write the region workbook of a closed period (every unit, its components, delivery and
    change against the previous period; the trends); its path. The close publishes it."""
    closed = _recorded(app, period)
    period = closed.period
    previous = period.previous()
    prev_closed = app.ledger.closes.period_closed(previous)
    prev_lines = app.ledger.closes.underlag_lines(previous) if prev_closed else []
    # Delivery as the region sees it when the workbook is written: late files count as late.
    deliveries = {(u.unit.hsaid, u.unit.filtyp): u for u in period_status(app.ledger, app.reference, period).units}
    region_units: list[dict[str, Any]] = []
    for unit, f, line_dicts in closed.entries(app):
        components: dict[str, Decimal] = {}
        for ln in line_dicts:
            components[ln["component"]] = components.get(ln["component"], Decimal(0)) + ln["amount"]
        prev = [
            Decimal(ln.amount)
            for ln in prev_lines
            if ln.unit_hsaid == unit.hsaid and ln.file_type == unit.filtyp and ln.corrected_period is None
        ]
        delivery = deliveries.get((unit.hsaid, unit.filtyp))
        region_units.append(
            {
                "unit_hsaid": unit.hsaid,
                "namn": unit.namn,
                "file_type": unit.filtyp,
                # The close took a file: on time by definition; otherwise what arrived since says late or missing.
                "status": "i tid" if f is not None else ("sen" if delivery and delivery.gallande else "saknas"),
                "components": components,
                "total": sum(components.values(), Decimal(0)),
                "previous_total": sum(prev, Decimal(0)) if prev_closed else None,
                "rejected_share": (Decimal(f.rows_rejected) / Decimal(f.rows_total)) if f and f.rows_total else None,
            }
        )
    used = [c.value for c in Component if any(c.value in u["components"] for u in region_units)]
    path = region_workbook(
        app.output / str(period) / f"region_{period}.xlsx",
        period=period,
        closed_at=local_time(closed.snapshot["at"]),
        components=used,
        units=region_units,
        trends=trends(app, period),
    )
    record_published(app, period, [path])
    return path


def write_workbooks(period: Period, *, app: App) -> list[Path]:
    """Every workbook of a closed period, each unit's and the region's (``vardfil report``)."""
    return [*write_unit_workbooks(period, app=app), write_region_workbook(period, app=app)]


def trends(app: App, period: Period, *, months: int = 13) -> Trends:
    """The "Trender" sheet's data from the datasets across periods (``vardfil.analysis``): the
    region's total for the last ``months`` periods, the ten largest changes against the previous
    period, the rejected share of each unit, and the deviation flags of the period."""

    root = dataset_root(app.output)  # this application's output, whatever the environment says
    p = Period.parse(period)
    window = [str(p.shift(-i)) for i in range(months - 1, -1, -1)]
    names = {h: u.namn for h, u in app.reference.units.items()}
    lines = analysis.underlag(window, root=root)
    totals: list[tuple[str, Decimal]] = []
    changes: list[tuple[str, Decimal]] = []
    if not lines.empty:
        per_period = lines.groupby("period")["amount"].sum()
        totals = [(q, Decimal(per_period[q])) for q in window if q in per_period.index]
        # The region sheet's and the board's definition of a change: what the unit is paid this
        # period (its corrections of earlier periods included) against the previous period's own
        # lines, so the chart and the tables beside it show the same figure.
        paid = lines.groupby(["unit_hsaid", "period"])["amount"].sum()
        own = lines[lines["corrected_period"].isna()].groupby(["unit_hsaid", "period"])["amount"].sum()
        prev = str(p.previous())
        for unit in sorted({u for u, _ in paid.index}):
            if (unit, str(p)) in paid.index and (unit, prev) in own.index:
                changes.append((names.get(unit, unit), Decimal(paid[(unit, str(p))] - own[(unit, prev)])))
        changes = sorted(changes, key=lambda c: abs(c[1]), reverse=True)[:10]
    deliv = analysis.deliveries([str(p)], root=root)
    rejected = (
        []
        if deliv.empty
        else [
            (names.get(r.unit_hsaid, r.unit_hsaid), float(r.rejected_share))
            for r in deliv.itertuples()
            if r.rejected_share == r.rejected_share and r.rejected_share is not None
        ]
    )
    flags = [(names.get(f.unit_hsaid, f.unit_hsaid), component(f.what), f.reason) for f in deviations(p, root=root)]
    return Trends(totals=totals, changes=changes, rejected=sorted(rejected, key=lambda r: -r[1]), flags=flags)


def _render_one(job: tuple[Path, dict[str, Any]]) -> Path:
    path, kwargs = job
    return unit_workbook(path, **kwargs)


class _Renderer:
    """Renders unit workbooks in parallel processes as their data is ready, with at most two per
    worker in flight, so memory follows the largest unit, not the month. openpyxl is pure Python
    (~30,000 cells/s) and the workbooks are independent. ``VARDFIL_WORKBOOK_WORKERS`` sets the
    number of processes (1: in this process)."""

    def __init__(self, workers: int | None):
        self.workers = workers or os.cpu_count() or 1
        if current_process().daemon:
            # A daemonic process (a Celery prefork worker running the Airflow task) may not have
            # children: render here; on Celery the parallelism is the workers' (found by
            # scripts/celery-trial.sh).
            self.workers = 1
        self.pool = (
            ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("fork")) if self.workers > 1 else None
        )
        self.pending: list[Future[Path]] = []
        self.done: list[Path] = []

    def add(self, job: tuple[Path, dict[str, Any]]) -> None:
        if self.pool is None:
            self.done.append(_render_one(job))
            return
        self.pending.append(self.pool.submit(_render_one, job))
        while len(self.pending) >= 2 * self.workers:
            self.done.append(self.pending.pop(0).result())

    def finish(self) -> list[Path]:
        try:
            self.done += [f.result() for f in self.pending]
        finally:
            if self.pool is not None:
                self.pool.shutdown()
        return self.done
