"""Excel workbooks for people: a unit's underlag and the analysts' region summary (openpyxl).

Styled as people read them: bold header on a coloured band, kronor formats, frozen header row,
autofilter, column widths from the content. Every value is written as a value — no formulas — and
text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-`` or ``@``) is
stored explicitly as text. Patient ids appear only masked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.cell.cell import WriteOnlyCell
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from reports.underlag import COMPONENT_LABELS

KRONOR = '#,##0.00 "kr";[Red]-#,##0.00 "kr"'
QUANTITY = "#,##0.###"
PERCENT = "0.0 %"
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14)
FLAG_FILL = PatternFill("solid", fgColor="FCE4D6")
FORMULA_STARTS = ("=", "+", "-", "@")


def write_value(cell: Any, value: object, number_format: str | None = None) -> Any:
    """Write a value into a cell (a sheet's or a write-only one); text that looks like a formula is
    stored as text, never run. Cells are ``Any``: openpyxl's cell classes share no typed base."""
    cell.value = value  # Decimals are written exactly (openpyxl stores their text in the XML)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        cell.data_type = "s"
    if number_format:
        cell.number_format = number_format
    return cell


def _table(
    ws: Worksheet, top: int, headers: list[str], rows: list[list[Any]], formats: dict[int, str] | None = None
) -> int:
    """A header row and data rows from row ``top``; returns the row after the table."""
    formats = formats or {}
    for c, h in enumerate(headers, start=1):
        cell: Any = ws.cell(row=top, column=c, value=h)
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for r, row in enumerate(rows, start=top + 1):
        for c, value in enumerate(row, start=1):
            write_value(ws.cell(row=r, column=c), value, formats.get(c - 1))
    return top + 1 + len(rows)


def _finish(ws: Worksheet, header_row: int, last_row: int, ncols: int) -> None:
    ws.freeze_panes = f"A{header_row + 1}"  # the same anchor as a cell, as the stubs want it
    # Printed (or exported to PDF) as a person reads it: landscape, all columns on one page width.
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    _fit_to_page(ws)
    ws.print_title_rows = f"{header_row}:{header_row}"
    if last_row > header_row:
        ws.auto_filter.ref = f"A{header_row}:{get_column_letter(ncols)}{max(last_row - 1, header_row)}"
    for col in range(1, ncols + 1):
        width = 8
        for (cell,) in ws.iter_rows(min_row=header_row, min_col=col, max_col=col):
            if cell.value is None:
                continue
            # Formatted numbers are wider than their digits: thousands separators, decimals, " kr".
            extra = 7 if isinstance(cell.value, (int, float, Decimal)) else 0
            width = max(width, len(str(cell.value)) + extra)
        ws.column_dimensions[get_column_letter(col)].width = min(width + 2, 60)


def _fit_to_page(ws: Any) -> None:
    # openpyxl creates the page-setup properties with every sheet; the stubs allow None.
    props = ws.sheet_properties.pageSetUpPr
    if props is None:
        props = ws.sheet_properties.pageSetUpPr = PageSetupProperties()
    props.fitToPage = True


def _save(wb: Workbook, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    wb.save(tmp)
    tmp.replace(path)
    return path


class _Sheet:
    """A write-only sheet: openpyxl streams the rows to disk as they are appended.

    Plain data cells are appended as bare values (openpyxl's fastest path, ~3× a styled cell);
    only cells that need a number format or must be kept from running as a formula become
    ``WriteOnlyCell`` objects. Column widths follow the header and the first ``WIDTH_SAMPLE`` rows.
    """

    WIDTH_SAMPLE = 2000

    def __init__(self, wb: Workbook, title: str):
        self.ws = wb.create_sheet(title)
        self.rows: list[tuple[str, list[Any]]] = []  # (kind, values); kind: "", "bold", "label", "header", "title"
        self.header_row: int | None = None
        self.formats: dict[int, str] = {}

    def row(self, values: Iterable[Any], *, kind: str = "") -> None:
        if kind == "header":
            self.header_row = len(self.rows) + 1
        self.rows.append((kind, list(values)))

    def _widths(self, ncols: int) -> list[int]:
        widths = [8] * ncols
        start = (self.header_row or len(self.rows) + 1) - 1
        for _kind, row in self.rows[start : start + 1 + self.WIDTH_SAMPLE]:
            for c, v in enumerate(row):
                if v is not None:
                    # Formatted numbers are wider than their digits: separators, decimals, " kr".
                    extra = 7 if isinstance(v, (int, float, Decimal)) else 0
                    widths[c] = max(widths[c], len(str(v)) + extra)
        return widths

    def _cell(
        self,
        value: object,
        *,
        number_format: str | None = None,
        font: Font | None = None,
        fill: PatternFill | None = None,
    ) -> Any:
        cell = write_value(WriteOnlyCell(self.ws), value, number_format)
        if font is not None:
            cell.font = font
        if fill is not None:
            cell.fill = fill
        return cell

    def write(self) -> None:
        ws, ncols = self.ws, max((len(r) for _k, r in self.rows), default=1)
        for c, w in enumerate(self._widths(ncols), start=1):
            ws.column_dimensions[get_column_letter(c)].width = min(w + 2, 60)
        if self.header_row:
            ws.freeze_panes = f"A{self.header_row + 1}"
            last = len(self.rows) - (1 if self.rows[-1][0] == "bold" else 0)  # a closing sum row is outside the filter
            ws.auto_filter.ref = f"A{self.header_row}:{get_column_letter(ncols)}{max(last, self.header_row)}"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        _fit_to_page(ws)
        styled = sorted(self.formats)
        bold = Font(bold=True)
        for kind, values in self.rows:
            if kind == "header":
                out = [self._cell(v, font=HEADER_FONT, fill=HEADER_FILL) for v in values]
            elif kind in ("title", "bold"):
                out = [
                    self._cell(v, font=TITLE_FONT if kind == "title" else bold, number_format=self.formats.get(c))
                    for c, v in enumerate(values)
                ]
            elif kind == "label":
                out = [self._cell(values[0], font=bold), *[self._data(v) for v in values[1:]]]
            else:
                out = [self._data(v) for v in values]
                for c in styled:
                    if c < len(out):
                        out[c] = self._cell(values[c], number_format=self.formats[c])
            ws.append(out)

    def _data(self, v: object) -> object:
        """A bare value where openpyxl writes it safely as it is, else a cell kept as text."""
        if isinstance(v, str) and v.startswith(FORMULA_STARTS):
            return self._cell(v)
        return v


def _table_rows(table: pl.DataFrame | list[dict[str, Any]] | None) -> tuple[list[str], list[Any]]:
    """Headers and row tuples of a polars frame or a list of dicts (``None``: no rows)."""
    if table is None or len(table) == 0:
        return [], []
    if isinstance(table, list):
        headers = list(table[0].keys())
        return headers, [[r[h] for h in headers] for r in table]
    return table.columns, table.rows()


def unit_workbook(
    path: Path,
    *,
    meta: dict[str, Any],
    lines: list[dict[str, Any]],
    visits: pl.DataFrame | list[dict[str, Any]] | None,
    rejected: list[dict[str, Any]],
) -> Path:
    """One unit's underlag for one period.

    ``meta``: unit name and HSA-id, filtyp, driftform, period, versions, file name, hash, received_at,
    on_time. ``lines``: underlag lines (component, quantity, unit_price, amount, corrected_period).
    ``visits``: the accepted rows behind the amounts (patient ids already masked), a polars frame
    or a list of dicts. ``rejected``: the findings of the file's rejected rows.
    """
    wb = Workbook(write_only=True)
    summary = _Sheet(wb, "Sammanställning")
    summary.row([f"Ersättningsunderlag {meta['period']}"], kind="title")
    summary.row([])
    info = [
        ("Vårdenhet", meta["namn"]),
        ("HSA-id", meta["unit_hsaid"]),
        ("Filtyp", meta["file_type"]),
        ("Driftform", meta["driftform"]),
        ("Period", meta["period"]),
        ("Fil", meta.get("file_name") or "ingen fil vid stängningen"),
        ("SHA-256", meta.get("sha256") or "-"),
        ("Mottagen", meta.get("received_at") or "-"),
        ("I tid", {True: "ja", False: "nej", None: "-"}[meta.get("on_time")]),
        ("Filspecifikation", meta.get("spec_version") or "-"),
        ("Prislista", meta["price_list"]),
        ("Avgiftstabell", meta["fee_table"]),
        ("Stängd", meta["closed_at"]),
    ]
    for k, v in info:
        summary.row([k, v], kind="label")
    summary.row([])
    summary.row(["Komponent", "Kod", "Antal", "À-pris", "Belopp", "Avser period"], kind="header")
    summary.formats = {2: QUANTITY, 3: QUANTITY, 4: KRONOR}
    for ln in lines:
        summary.row(
            [
                COMPONENT_LABELS.get(ln["component"], ln["component"]),
                ln["component"],
                ln["quantity"],
                ln["unit_price"],
                ln["amount"],
                ln["corrected_period"] or "",
            ]
        )
    summary.row(
        ["Summa", None, None, None, sum((Decimal(str(ln["amount"])) for ln in lines), Decimal(0)), None], kind="bold"
    )
    summary.write()
    summary.ws.column_dimensions["A"].width = 42

    vs = _Sheet(wb, "Besök")
    headers, rows = _table_rows(visits)
    if rows:
        vs.row(headers, kind="header")
        vs.formats = {i: KRONOR for i, h in enumerate(headers) if h in ("ersattning", "forvantad_avgift")}
        vs.rows.extend(("", r) for r in rows)
    else:
        vs.row(["Inga godkända besök"])
    vs.write()

    rs = _Sheet(wb, "Avvisade rader")
    if rejected:
        headers = ["rad", "besok_id", "regel", "allvarlighet", "falt", "varde", "meddelande"]
        rs.row(headers, kind="header")
        for f in rejected:
            rs.row([f.get(h) for h in headers])
    else:
        rs.row(["Inga avvisade rader"])
    rs.write()
    return _save(wb, path)


def region_workbook(
    path: Path,
    *,
    period: str,
    closed_at: str,
    components: list[str],
    units: list[dict[str, Any]],
    change_flag: Decimal = Decimal("0.20"),
    trends: Trends | None = None,
) -> Path:
    """The analysts' summary: every unit × component, total, change against the previous period,
    delivery status and rejected share, with large changes flagged; with ``trends`` also a
    "Trender" sheet of native charts and the deviation flags."""
    wb = Workbook()
    ws: Any = wb.active  # a new workbook's one sheet
    ws.title = "Region"
    ws["A1"] = f"Ersättningsunderlag {period} — alla enheter (stängd {closed_at})"
    ws["A1"].font = TITLE_FONT
    headers = (
        ["HSA-id", "Vårdenhet", "Filtyp", "Status"]
        + components
        + ["Summa", "Föregående period", "Förändring", "Förändring %", "Avvisade rader %", "Flagga"]
    )
    rows = []
    for u in units:
        amounts = [u["components"].get(c, Decimal(0)) for c in components]
        prev = u.get("previous_total")
        change = (u["total"] - prev) if prev is not None else None
        share = (change / prev) if prev not in (None, Decimal(0)) and change is not None else None
        flag = "stor förändring" if share is not None and abs(share) > change_flag else ""
        if u["status"] in ("saknas", "sen"):
            flag = (flag + ", " if flag else "") + u["status"]
        rows.append(
            [
                u["unit_hsaid"],
                u["namn"],
                u["file_type"],
                u["status"],
                *amounts,
                u["total"],
                prev,
                change,
                share,
                u.get("rejected_share"),
                flag,
            ]
        )
    first_amount = 4
    formats = dict.fromkeys(range(first_amount, first_amount + len(components) + 3), KRONOR)
    formats[first_amount + len(components) + 3] = PERCENT
    formats[first_amount + len(components) + 4] = PERCENT
    end = _table(ws, 3, headers, rows, formats)
    for r in range(4, end):
        if ws.cell(row=r, column=len(headers)).value:
            for c in range(1, len(headers) + 1):
                ws.cell(row=r, column=c).fill = FLAG_FILL
    ws.cell(row=end, column=1, value="Summa").font = Font(bold=True)
    col_total = first_amount + len(components)
    write_value(
        ws.cell(row=end, column=col_total + 1), sum((u["total"] for u in units), Decimal(0)), KRONOR
    ).font = Font(bold=True)
    _finish(ws, 3, end, len(headers))
    if trends is not None:
        _trend_sheet(wb, period, trends)
    return _save(wb, path)


@dataclass(frozen=True, kw_only=True)
class Trends:
    """What the "Trender" sheet shows: the region's total per period (oldest first), the largest
    changes against the previous period per unit, the rejected share per unit, and the deviation
    flags (unit name, what, the reason in words)."""

    totals: list[tuple[str, Decimal]]
    changes: list[tuple[str, Decimal]]
    rejected: list[tuple[str, float]]
    flags: list[tuple[str, str, str]]


def _trend_sheet(wb: Workbook, period: str, t: Trends) -> None:
    # Native Excel charts over tables on the same sheet: the analyst can read the numbers behind
    # every picture, and a chart stays live if someone edits a figure.
    ws: Any = wb.create_sheet("Trender")
    ws["A1"] = f"Trender till och med {period}"
    ws["A1"].font = TITLE_FONT
    blocks = [
        ("Regionens summa per period", ["Period", "Summa"], [[p, a] for p, a in t.totals], KRONOR),
        (
            "De största förändringarna mot föregående period",
            ["Vårdenhet", "Förändring"],
            [[n, c] for n, c in t.changes],
            KRONOR,
        ),
        ("Andel avvisade rader per enhet", ["Vårdenhet", "Avvisade rader %"], [[n, r] for n, r in t.rejected], PERCENT),
    ]
    top, anchor_row = 3, 3
    charts: list[Any] = [LineChart(), BarChart(), BarChart()]
    for (title, headers, rows, fmt), chart in zip(blocks, charts, strict=True):
        ws.cell(row=top, column=1, value=title).font = Font(bold=True)
        end = _table(ws, top + 1, headers, rows, {1: fmt})
        if rows:
            chart.title, chart.legend = title, None
            chart.height, chart.width = 7.5, 16
            if isinstance(chart, BarChart):
                chart.type = "bar"  # horizontal: unit names read along the axis
            chart.add_data(Reference(ws, min_col=2, min_row=top + 1, max_row=end - 1), titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=1, min_row=top + 2, max_row=end - 1))
            ws.add_chart(chart, f"D{anchor_row}")
            anchor_row += 16
        top = max(end + 2, top + 17)
    ws.cell(row=top, column=1, value="Avvikelser mot enhetens egna senaste 12 månader").font = Font(bold=True)
    _table(ws, top + 1, ["Vårdenhet", "Vad", "Skäl"], [list(f) for f in t.flags] or [["–", "–", "Inga avvikelser"]])
    for col, width in (("A", 34), ("B", 18), ("C", 70)):
        ws.column_dimensions[col].width = width
    _fit_to_page(ws)
    ws.page_setup.orientation = "landscape"
