"""Excel workbooks for people: a unit's underlag and the analysts' region summary (openpyxl).

Styled as people read them: bold header on a coloured band, frozen header row, autofilter, column
widths from the content; Swedish number formats (``1 004 878,50 kr``) and instants as real date
cells; printed on A4 (portrait when it fits, else landscape; one page wide unless that would
shrink the text below 8 pt, then split across pages), the header row repeated on every page and a
footer naming whose underlag, which period, when it was closed and the page. Every value is written as a value — no formulas — and
text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-`` or ``@``) is
stored explicitly as text. Patient ids appear only masked.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.cell.cell import WriteOnlyCell
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.axis import ChartLines
from openpyxl.chart.label import DataLabelList
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from filespec.calendar import Period
from reports.underlag import COMPONENT_LABELS, line_label

# [$-41D] is the Swedish locale (LCID 0x041D): the sheet shows a space between thousands and a
# decimal comma whatever the reader's own settings (LibreOffice honours it; Swedish Excel already
# shows the grouping and decimal symbols of its Windows locale).
SV = "[$-41D]"
KRONOR = f'{SV}#,##0.00 "kr";[Red]{SV}-#,##0.00 "kr"'
INTEGER = f"{SV}#,##0"
PERCENT = f"{SV}0.0 %"
DATETIME = f"{SV}yyyy-mm-dd hh:mm"  # the Swedish short form (CLDR sv: y-MM-dd HH:mm)
PAGE_FOOTER_RIGHT = "Sida &P av &N"
HEADER_WIDTH = 16
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
# The workbook's body font (openpyxl's default, Calibri 11) named on every styled cell: a font with
# no name is whatever the spreadsheet program picks (LibreOffice picked a serif, wider).
BODY_FONT = "Calibri"
HEADER_FONT = Font(name=BODY_FONT, bold=True, color="FFFFFF")
TITLE_FONT = Font(name=BODY_FONT, bold=True, size=14)
BOLD_FONT = Font(name=BODY_FONT, bold=True)
FLAG_FILL = PatternFill("solid", fgColor="FCE4D6")
LEFT = Alignment(horizontal="left")
HEADER_ALIGNMENT = Alignment(vertical="center", wrap_text=True)
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


def _shown_width(value: object) -> int:
    """About how many characters a value takes as the sheet shows it: amounts with separators,
    decimals and " kr"; shares as "12,3 %"; anything else as its text."""
    if isinstance(value, bool):
        return 5
    if isinstance(value, float):
        return 8
    if isinstance(value, int):
        return len(f"{value:,}")  # a count or a row number: no decimals, no " kr"
    if isinstance(value, Decimal):
        return len(f"{value:,.2f}") + 3
    return len(str(value))


def _header_width(text: object) -> int:
    """A wrapped header's width: at most HEADER_WIDTH, but never narrower than its longest word
    in bold (about a tenth wider than the body font), so "Momskompensation" is not broken."""
    words = str(text).split()
    return max(min(len(str(text)), HEADER_WIDTH), -(-max((len(w) for w in words), default=0) * 11 // 10))


def quantity_format(value: object) -> str:
    """A count as a whole number, a quantity or price with the decimals it has (``1 032,40``):
    one format for a column would print ``1 200,`` or drop the öre."""
    if isinstance(value, Decimal) and value.is_finite() and value != value.to_integral_value():
        return f"{SV}#,##0.{'0' * max(0, -int(value.as_tuple().exponent))}"
    return INTEGER


@dataclass(frozen=True, kw_only=True)
class Footer:
    """What every printed page says at its foot: whose underlag and which period (left), when it was
    closed and the page (right)."""

    who: str
    closed: str

    def apply(self, ws: Any) -> None:
        # "&" starts a header/footer code; a unit named "Vård & Hälsa" must print as written.
        ws.oddFooter.left.text = self.who.replace("&", "&&")
        # The close and the page share the right part: a centre part overlaps a long unit name
        # on a narrow page.
        ws.oddFooter.right.text = f"Stängd {self.closed}".replace("&", "&&") + " · " + PAGE_FOOTER_RIGHT


def _table(
    ws: Worksheet, top: int, headers: list[str], rows: list[list[Any]], formats: dict[int, str] | None = None
) -> int:
    """A header row and data rows from row ``top``; returns the row after the table."""
    formats = formats or {}
    for c, h in enumerate(headers, start=1):
        cell: Any = ws.cell(row=top, column=c, value=h)
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = HEADER_ALIGNMENT
    for r, row in enumerate(rows, start=top + 1):
        for c, value in enumerate(row, start=1):
            write_value(ws.cell(row=r, column=c), value, formats.get(c - 1))
    return top + 1 + len(rows)


def _finish(ws: Worksheet, header_row: int, last_row: int, ncols: int, footer: Footer) -> None:
    ws.freeze_panes = f"A{header_row + 1}"  # the same anchor as a cell, as the stubs want it
    footer.apply(ws)
    ws.print_title_rows = f"{header_row}:{header_row}"
    if last_row > header_row:
        ws.auto_filter.ref = f"A{header_row}:{get_column_letter(ncols)}{max(last_row - 1, header_row)}"
    widths = []
    for col in range(1, ncols + 1):
        width = 8
        for (cell,) in ws.iter_rows(min_row=header_row, min_col=col, max_col=col):
            if cell.value is None:
                continue
            # A header wraps (the Swedish component names are long): it sets no more than a short
            # column's width, so a wide sheet stays as narrow as its figures allow.
            length = _header_width(cell.value) if cell.row == header_row else _shown_width(cell.value)
            width = max(width, length)
        widths.append(min(width + 2, 60))
        ws.column_dimensions[get_column_letter(col)].width = widths[-1]
    ws.row_dimensions[header_row].height = 48  # three lines of a wrapped header
    print_setup(ws, widths, repeat_columns="A:B")


# Printing (issue 32). A4, never the US Letter openpyxl leaves unset; margins that keep the footer
# clear of the table; portrait when the columns fit, else landscape; one page wide at the scale
# that fits while that keeps the text at 8 pt or more (the 11 pt body at MIN_SCALE or above), else
# split across pages at MIN_SCALE with the identifying columns repeated on each. Widths in Excel's character units:
# a column of width w takes about 7w + 5 pixels at 96 dpi.
A4_INCHES = (8.27, 11.69)
MARGINS = PageMargins(left=0.5, right=0.5, top=0.6, bottom=0.85, header=0.3, footer=0.3)
MIN_SCALE = 75  # 11 pt × 75 % = 8,25 pt: the smallest text a printed sheet shows


def _inches(widths: Iterable[float]) -> float:
    return sum(7 * w + 5 for w in widths) / 96


def print_setup(
    ws: Any, widths: Sequence[float], *, repeat_columns: str | None = None, extra_inches: float = 0.0
) -> None:
    """How a sheet prints: A4, portrait or landscape by its width, readable (see MIN_SCALE).
    ``extra_inches``: what floats beside the cells (charts)."""
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4  # (a write-only sheet lacks the constant)
    ws.page_margins = MARGINS
    need = _inches(widths) + extra_inches
    portrait, landscape = (side - MARGINS.left - MARGINS.right for side in A4_INCHES)
    ws.page_setup.orientation = "portrait" if need <= portrait else "landscape"
    props = ws.sheet_properties.pageSetUpPr
    if props is None:  # openpyxl creates the page-setup properties with every sheet; the stubs allow None
        props = ws.sheet_properties.pageSetUpPr = PageSetupProperties()
    room = portrait if ws.page_setup.orientation == "portrait" else landscape
    # An explicit scale, never "fit to width": a spreadsheet program fits with its own fonts'
    # widths (LibreOffice without Calibri shrank a sheet to 6,7 pt), and nothing may print below 8 pt.
    props.fitToPage = False
    # 5 % to spare: the estimate of a column's printed width is a program's, not the printer's.
    ws.page_setup.scale = max(MIN_SCALE, min(100, int(95 * room / need)))
    if need * MIN_SCALE / 95 > landscape:  # split across pages: each column stays readable
        ws.page_setup.pageOrder = "overThenDown"  # a row's continuation is the next page, not ten later
        if repeat_columns:
            ws.print_title_cols = repeat_columns


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

    def __init__(self, wb: Workbook, title: str, footer: Footer):
        self.ws = wb.create_sheet(title)
        self.footer = footer
        self.rows: list[tuple[str, list[Any]]] = []  # (kind, values); kind: "", "bold", "label", "header", "title"
        self.header_row: int | None = None
        # A column's number format, or a function of the value (quantities: whole or with decimals).
        self.formats: dict[int, str | Callable[[Any], str]] = {}

    def row(self, values: Iterable[Any], *, kind: str = "") -> None:
        if kind == "header":
            self.header_row = len(self.rows) + 1
        self.rows.append((kind, list(values)))

    def _widths(self, ncols: int) -> list[int]:
        widths = [8] * ncols
        start = (self.header_row or len(self.rows) + 1) - 1
        for kind, row in self.rows[start : start + 1 + self.WIDTH_SAMPLE]:
            for c, v in enumerate(row):
                if v is not None:
                    # A header wraps: as in _finish, it sets no more than a short column's width.
                    shown = _header_width(v) if kind == "header" else _shown_width(v)
                    widths[c] = max(widths[c], shown)
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
        widths = self._widths(ncols)
        for c, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(c)].width = min(w + 2, 60)
        if self.header_row:
            ws.freeze_panes = f"A{self.header_row + 1}"
            last = len(self.rows) - (1 if self.rows[-1][0] == "bold" else 0)  # a closing sum row is outside the filter
            ws.auto_filter.ref = f"A{self.header_row}:{get_column_letter(ncols)}{max(last, self.header_row)}"
        print_setup(ws, [min(w + 2, 60) for w in widths], repeat_columns="A:B")
        if self.header_row:
            ws.print_title_rows = f"{self.header_row}:{self.header_row}"  # on every printed page
        self.footer.apply(ws)
        styled = sorted(self.formats)
        bold = BOLD_FONT
        for kind, values in self.rows:
            if kind == "header":
                out = [self._cell(v, font=HEADER_FONT, fill=HEADER_FILL) for v in values]
                for cell in out:
                    cell.alignment = HEADER_ALIGNMENT
            elif kind in ("title", "bold"):
                out = [
                    self._cell(v, font=TITLE_FONT if kind == "title" else bold, number_format=self._format(c, v))
                    for c, v in enumerate(values)
                ]
            elif kind == "label":
                out = [self._cell(values[0], font=bold), *[self._data(v) for v in values[1:]]]
            else:
                out = [self._data(v) for v in values]
                for c in styled:
                    if c < len(out) and values[c] is not None:
                        out[c] = self._cell(values[c], number_format=self._format(c, values[c]))
            ws.append(out)

    def _format(self, column: int, value: object) -> str | None:
        fmt = self.formats.get(column)
        return fmt(value) if callable(fmt) else fmt

    def _data(self, v: object) -> object:
        """A bare value where openpyxl writes it safely as it is, else a cell kept as text; an
        instant is a date cell in the Swedish short form (dates keep openpyxl's yyyy-mm-dd)."""
        if isinstance(v, str) and v.startswith(FORMULA_STARTS):
            return self._cell(v)
        if isinstance(v, dt.datetime):
            cell = self._cell(v, number_format=DATETIME)
            cell.alignment = LEFT  # read beside its label like the text around it
            return cell
        return v


def _table_rows(table: pl.DataFrame | list[dict[str, Any]] | None) -> tuple[list[str], list[Any]]:
    """Headers and row tuples of a polars frame or a list of dicts (``None``: no rows)."""
    if table is None or len(table) == 0:
        return [], []
    if isinstance(table, list):
        headers = list(table[0].keys())
        return headers, [[r[h] for h in headers] for r in table]
    return table.columns, table.rows()


# The Besök sheet's columns by their Swedish names; the file's own field names stay where a unit
# looks them up in the specification (besok_id), and the component column keeps the codes of the
# summary's "Kod" column, so a row can be traced to its line.
VISIT_HEADERS = {
    "rad": "Rad",
    "patient": "Patient (maskerad)",
    "besoksdatum": "Besöksdatum",
    "yrkeskategori": "Yrkeskategori",
    "kontakttyp": "Kontakttyp",
    "folkbokforing_lan": "Folkbokföringslän",
    "listad": "Listad på enheten",
    "komponent": "Komponent (kod)",
    "ersattning": "Ersättning",
    "forvantad_avgift": "Förväntad patientavgift",
    "tolktillagg": "Tolktillägg",
    "forstabesokstillagg": "Förstabesökstillägg",
    "kontaktpoang": "Kontaktpoäng",
}
REJECTED_HEADERS = {
    "rad": "Rad",
    "besok_id": "besok_id",
    "regel": "Regel",
    "allvarlighet": "Allvarlighet",
    "falt": "Fält",
    "varde": "Värde",
    "meddelande": "Meddelande",
}


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
    footer = Footer(
        who=f"{meta['namn']} ({meta['unit_hsaid']}) · Ersättningsunderlag {meta['period']}",
        closed=str(meta.get("closed_text") or meta["closed_at"]),
    )
    summary = _Sheet(wb, "Sammanställning", footer)
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
    summary.formats = {2: quantity_format, 3: quantity_format, 4: KRONOR}
    for ln in lines:
        summary.row(
            [
                line_label(ln["component"], ln["unit_price"], meta["period"]),
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

    vs = _Sheet(wb, "Besök", footer)
    headers, rows = _table_rows(visits)
    if rows:
        vs.row([VISIT_HEADERS.get(h, h) for h in headers], kind="header")
        vs.formats = {i: KRONOR for i, h in enumerate(headers) if h in ("ersattning", "forvantad_avgift")}
        vs.rows.extend(("", r) for r in rows)
    else:
        vs.row(["Inga godkända besök"])
    vs.write()

    rs = _Sheet(wb, "Avvisade rader", footer)
    if rejected:
        keys = list(REJECTED_HEADERS)
        rs.row(list(REJECTED_HEADERS.values()), kind="header")
        for f in rejected:
            rs.row([f.get(k) for k in keys])
    else:
        rs.row(["Inga avvisade rader"])
    rs.write()
    return _save(wb, path)


def region_workbook(
    path: Path,
    *,
    period: str | Period,
    closed_at: str,
    components: list[str],
    units: list[dict[str, Any]],
    change_flag: Decimal = Decimal("0.20"),
    trends: Trends | None = None,
) -> Path:
    """The analysts' summary: every unit × component, total, change against the previous period,
    delivery status and rejected share, with large changes flagged; with ``trends`` also a
    "Trender" sheet of native charts and the deviation flags. ``closed_at``: the close's instant as
    a person reads it (``2026-11-04 15:00``)."""
    footer = Footer(who=f"Västra Götalandsregionen · Ersättningsunderlag {period}, alla enheter", closed=closed_at)
    wb = Workbook()
    ws: Any = wb.active  # a new workbook's one sheet
    ws.title = "Region"
    ws["A1"] = f"Ersättningsunderlag {period} — alla enheter (stängd {closed_at})"
    ws["A1"].font = TITLE_FONT
    headers = (
        ["HSA-id", "Vårdenhet", "Filtyp", "Leverans"]
        + [COMPONENT_LABELS.get(c, c) for c in components]
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
    ws.cell(row=end, column=1, value="Summa").font = BOLD_FONT
    col_total = first_amount + len(components)
    write_value(
        ws.cell(row=end, column=col_total + 1), sum((u["total"] for u in units), Decimal(0)), KRONOR
    ).font = BOLD_FONT
    _finish(ws, 3, end, len(headers), footer)
    if trends is not None:
        _trend_sheet(wb, period, trends, footer)
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


def _trend_sheet(wb: Workbook, period: str | Period, t: Trends, footer: Footer) -> None:
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
        ws.cell(row=top, column=1, value=title).font = BOLD_FONT
        end = _table(ws, top + 1, headers, rows, {1: fmt})
        if rows:
            chart.add_data(Reference(ws, min_col=2, min_row=top + 1, max_row=end - 1), titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=1, min_row=top + 2, max_row=end - 1))
            _chart_style(chart, title, fmt, [float(str(r[1])) for r in rows])
            ws.add_chart(chart, f"C{anchor_row}")  # beside its table (A:B), clear of its labels
            anchor_row += 16
        top = max(end + 2, top + 17)
    ws.cell(row=top, column=1, value="Avvikelser mot enhetens egna senaste 12 månader").font = BOLD_FONT
    _table(ws, top + 1, ["Vårdenhet", "Vad", "Skäl"], [list(f) for f in t.flags] or [["–", "–", "Inga avvikelser"]])
    widths = [34, 18, 70]
    for col, width in zip("ABC", widths, strict=True):
        ws.column_dimensions[col].width = width
    # Several tables on one sheet: the sheet's title is the row every printed page repeats.
    ws.print_title_rows = "1:1"
    footer.apply(ws)
    # The charts float over column C and beyond it: the page must hold A, B and the wider of C
    # and a chart.
    print_setup(ws, widths, extra_inches=max(0.0, CHART_CM / 2.54 - _inches(widths[2:])))


CHART_CM = 16
# Axis and label formats in whole kronor and one-decimal percent: a chart's text is read at a
# glance, the table beside it has the öre.
AXIS_FORMATS = {KRONOR: f'{SV}#,##0 "kr";{SV}-#,##0 "kr"', PERCENT: f"{SV}0.0 %"}


def _chart_style(chart: Any, title: str, fmt: str, values: list[float]) -> None:
    """A chart as a person reads it: both axes shown, values from zero, straight lines between
    months (a smoothed curve invents values between them), every bar valued at its end, and the
    unit names at the left edge, never on top of a bar that runs below zero."""
    chart.title, chart.legend = title, None
    chart.height, chart.width = 7.5, CHART_CM
    chart.x_axis.delete = chart.y_axis.delete = False  # openpyxl 3.1 hides both axes by default
    chart.y_axis.number_format = AXIS_FORMATS[fmt]
    chart.y_axis.majorGridlines = ChartLines()
    if isinstance(chart, LineChart):
        chart.y_axis.scaling.min = 0
        for series in chart.series:
            series.smooth = False
            series.marker.symbol = "circle"
        return
    chart.type = "bar"  # horizontal: unit names read along the axis
    chart.x_axis.tickLblPos = "low"
    lo, hi = min(0.0, *values), max(0.0, *values)
    if lo < 0:  # room left of a bar below zero for its label, clear of the unit names
        padded = lo - 0.4 * (hi - lo)
        raw = (hi - padded) / 5
        power = 10 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)  # round gridlines
        chart.y_axis.scaling.min = math.floor(padded / step) * step
        chart.y_axis.majorUnit = step
    chart.dataLabels = DataLabelList(showVal=True, dLblPos="outEnd", numFmt=AXIS_FORMATS[fmt])
    for flag in ("showLegendKey", "showCatName", "showSerName", "showPercent", "showBubbleSize"):
        setattr(chart.dataLabels, flag, False)
