"""Workbooks read back by cell value (never bytes), formula safety, and LibreOffice opening them."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import cli
from openpyxl import load_workbook
from optional import LIBREOFFICE, need_program

from reports.workbooks import unit_workbook

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
REF = str(EXAMPLE / "reference")


@pytest.fixture(scope="module")
def closed_month(tmp_path_factory):
    """The region's test month submitted and both periods closed, on the embedded default."""
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("VARDFIL_HOME", str(home))
    for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_OUTPUT"):
        mp.delenv(var, raising=False)
    closes = {c["after_submission"]: c for c in EXPECTED["closes"]}
    summaries = {}
    for sub in EXPECTED["submissions"]:
        cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
        if sub["index"] in closes:
            c = closes[sub["index"]]
            summaries[c["period"]] = json.loads(cli("close", c["period"], "--at", c["at"], "--reference", REF)[1])
    code, out = cli("report", "2026-10", "--reference", REF)
    assert code == 0
    yield summaries, [Path(p) for p in out.split()]
    mp.undo()


def _summary_table(ws) -> tuple[list[tuple], object]:
    rows = list(ws.iter_rows(values_only=True))
    top = next(i for i, r in enumerate(rows) if r[0] == "Komponent")
    body, total = [], None
    for r in rows[top + 1 :]:
        if r[0] == "Summa":
            total = r[4]
            break
        body.append(r)
    return body, total


def test_unit_workbook_reads_back_to_the_underlag(closed_month):
    summaries, paths = closed_month
    lines = [
        r
        for r in pq.read_table(summaries["2026-10"]["underlag_parquet"]).to_pylist()
        if r["unit_hsaid"] == "SE2321000131-E000000000101"
    ]
    path = next(p for p in paths if p.name == "SE2321000131-E000000000101_VGP_2026-10.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["Sammanställning", "Besök", "Avvisade rader"]
    ws = wb["Sammanställning"]
    body, total = _summary_table(ws)
    assert [(r[1], Decimal(str(r[4])), r[5] or None) for r in body] == [
        (ln["component"], ln["amount"], ln["corrected_period"]) for ln in lines
    ]
    assert Decimal(str(total)) == sum(ln["amount"] for ln in lines)
    amount_cell = next(c for c in ws["E"] if isinstance(c.value, (int, float)))
    assert "kr" in amount_cell.number_format
    assert ws.freeze_panes and ws.auto_filter.ref

    visits = list(wb["Besök"].iter_rows(values_only=True))
    header, data = visits[0], visits[1:]
    assert len(data) == 2517  # the accepted rows of the gällande file
    col = {h: i for i, h in enumerate(header)}
    assert all(str(r[col["Patient (maskerad)"]]).endswith("****") for r in data)
    paid = {}
    for r in data:
        if r[col["Komponent (kod)"]]:
            code = r[col["Komponent (kod)"]]
            paid[code] = paid.get(code, 0) + Decimal(str(r[col["Ersättning"]]))
    for comp in ("BESOK_EJ_LISTAD", "BESOK_UTOMLANS"):
        assert paid[comp] == sum(ln["amount"] for ln in lines if ln["component"] == comp)
    rejected = list(wb["Avvisade rader"].iter_rows(values_only=True))[1:]
    counts = next(x["kvittens"]["counts_by_rule"] for x in EXPECTED["submissions"] if x["index"] == 21)
    assert len(rejected) == sum(n for rule, n in counts.items() if rule.startswith("R"))  # every FEL finding


def test_reh_workbook_points_add_up(closed_month):
    summaries, paths = closed_month
    path = next(p for p in paths if p.name == "SE2321000131-E000000000201_REH_2026-10.xlsx")
    rows = list(load_workbook(path)["Besök"].iter_rows(values_only=True))
    col = {h: i for i, h in enumerate(rows[0])}
    points = sum(Decimal(str(r[col["Kontaktpoäng"]])) for r in rows[1:])
    line = next(
        r
        for r in pq.read_table(summaries["2026-10"]["underlag_parquet"]).to_pylist()
        if r["unit_hsaid"] == "SE2321000131-E000000000201" and r["component"] == "KONTAKTPOANG"
    )
    assert points == line["quantity"]


def test_region_workbook_totals(closed_month):
    summaries, paths = closed_month
    wb = load_workbook(next(p for p in paths if p.name == "region_2026-10.xlsx"))
    rows = list(wb.active.iter_rows(values_only=True))
    header = rows[2]
    units = [r for r in rows[3:] if r[0] and r[0].startswith("SE")]
    assert len(units) == len(summaries["2026-10"]["units"])
    total = next(r for r in rows if r[0] == "Summa")[header.index("Summa")]
    assert Decimal(str(total)).quantize(Decimal("0.01")) == Decimal(summaries["2026-10"]["total"])
    assert header.index("Föregående period") > header.index("Summa")


def test_text_that_looks_like_a_formula_stays_text(tmp_path):
    path = unit_workbook(
        tmp_path / "u.xlsx",
        meta={
            "namn": "=cmd|' /C calc'!A0",
            "unit_hsaid": "SE2321000131-E000000000101",
            "file_type": "VGP",
            "driftform": "PRIVAT",
            "period": "2026-10",
            "price_list": "VGR-2026.1",
            "fee_table": "x",
            "closed_at": "2026-11-04T15:00:00+01:00",
        },
        lines=[],
        visits=[],
        rejected=[
            {
                "rad": 2,
                "besok_id": "A1",
                "regel": "R50",
                "allvarlighet": "FEL",
                "falt": "diagnos_1",
                "varde": '=HYPERLINK("http://x")',
                "meddelande": "-",
            },
            {
                "rad": 3,
                "besok_id": "A2",
                "regel": "R25",
                "allvarlighet": "FEL",
                "falt": "folkbokforing_lan",
                "varde": "+46",
                "meddelande": "@x",
            },
        ],
    )
    wb = load_workbook(path)
    cells = [
        c for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str) and c.value[:1] in "=+-@"
    ]
    assert all(c.data_type == "s" for c in cells)
    assert {"=cmd|' /C calc'!A0", '=HYPERLINK("http://x")', "+46", "@x"} <= {c.value for c in cells}


def test_libreoffice_opens_every_workbook(closed_month, tmp_path):
    office = need_program(("libreoffice", "soffice"), LIBREOFFICE, "LibreOffice")
    _, paths = closed_month
    profile = tmp_path / "profile"
    result = subprocess.run(
        [
            office,
            "--headless",
            f"-env:UserInstallation=file://{profile}",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # Every workbook of the closed month, the region's and each unit's: none is quietly absent.
    assert {p.name for p in paths} >= {"region_2026-10.xlsx", "SE2321000131-E000000000101_VGP_2026-10.xlsx"}
    for p in paths:
        pdf = tmp_path / (p.stem + ".pdf")
        assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")


def test_the_region_workbook_has_trends_with_native_charts(closed_month, tmp_path):
    import zipfile

    summaries, paths = closed_month
    region = next(p for p in paths if p.name == "region_2026-10.xlsx")
    with zipfile.ZipFile(region) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        # openpyxl writes the chart namespace as the default one: no "c:" prefixes.
        xml = {n: z.read(n).decode().replace("<c:", "<") for n in charts}
    assert len(charts) == 3  # total per period, largest changes, rejected share
    line = next(x for x in xml.values() if "<lineChart>" in x)
    # Straight between months, from zero, both axes shown (issue 32).
    assert '<smooth val="0"/>' in line and '<min val="0"/>' in line and '<smooth val="1"/>' not in line
    for x in xml.values():
        assert x.count('<delete val="0"/>') >= 2 and '<delete val="1"/>' not in x
    for x in (x for x in xml.values() if "<barChart>" in x):
        assert '<showVal val="1"/>' in x and '<tickLblPos val="low"/>' in x  # valued, names clear of bars
    ws = load_workbook(region)["Trender"]
    rows = [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
    totals = {r[0]: Decimal(str(r[1])) for r in rows if r[0] in ("2026-09", "2026-10")}  # read back as float
    assert totals == {p: Decimal(s["total"]) for p, s in summaries.items()}
    assert any(r[0] == "Avvikelser mot enhetens egna senaste 12 månader" for r in rows)

    office = need_program(("libreoffice", "soffice"), LIBREOFFICE, "LibreOffice")
    subprocess.run(
        [
            office,
            "--headless",
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(region),
        ],
        capture_output=True,
        timeout=300,
        check=True,
    )
    pdf = tmp_path / "region_2026-10.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Trender till och med 2026-10" in text and "Regionens summa per period" in text
    # The page as a person sees it, for the test artefacts.
    artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    pages = text.split("\f")
    page = next(i for i, t in enumerate(pages, start=1) if "Trender till och med" in t)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page), str(pdf), str(artifacts / "region-trender")],
        check=True,
        timeout=120,
    )


def test_workbooks_are_swedish_and_print_as_people_read_them(closed_month):
    """Dates as date cells, Swedish headers and number formats, the header row on every printed
    page and a footer naming the unit, the period, the close and the page (issue 17)."""
    import datetime as dt

    from reports.underlag import COMPONENT_LABELS

    _, paths = closed_month
    unit = load_workbook(next(p for p in paths if p.name == "SE2321000131-E000000000101_VGP_2026-10.xlsx"))
    labels = {r[0].value: r[1] for r in unit["Sammanställning"].iter_rows(min_row=3, max_row=16) if r[0].value}
    for key in ("Mottagen", "Stängd"):
        assert isinstance(labels[key].value, dt.datetime), key
        assert labels[key].number_format.endswith("yyyy-mm-dd hh:mm"), key
    assert labels["Stängd"].value == dt.datetime(2026, 11, 4, 15, 0)  # Stockholm wall time, not UTC
    amounts = [c for c in unit["Sammanställning"]["E"] if isinstance(c.value, (int, float))]
    assert amounts and all(c.number_format.startswith("[$-41D]") for c in amounts)
    region = load_workbook(next(p for p in paths if p.name == "region_2026-10.xlsx"))
    header = [c.value for c in region["Region"][3]]
    assert "Ålders- och könsersättning (listning)" in header and "Leverans" in header
    assert not set(header) & set(COMPONENT_LABELS)  # no component codes as headers
    for wb, who in ((unit, "Vårdcentralen"), (region, "alla enheter")):
        for ws in wb.worksheets:
            assert ws.print_title_rows, ws.title
            assert who in ws.oddFooter.left.text and "2026-10" in ws.oddFooter.left.text, ws.title
            assert ws.oddFooter.right.text == "Stängd 2026-11-04 15:00 · Sida &P av &N", ws.title
    assert unit["Besök"].print_title_rows == "$1:$1"
    # A4 everywhere; the region's wide sheet landscape and split across pages with the unit's
    # HSA-id and name on each, never shrunk below 75 % (8 pt); the footer's band below the table.
    for wb in (unit, region):
        for ws in wb.worksheets:
            assert int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4), ws.title
            assert int(ws.page_setup.scale or 100) >= 75 and not ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
            assert ws.page_margins.bottom - ws.page_margins.footer >= 0.5, ws.title
    wide = region["Region"]
    assert wide.page_setup.orientation == "landscape" and wide.print_title_cols == "$A:$B"
    assert wide.page_setup.pageOrder == "overThenDown"
    assert int(unit["Sammanställning"].page_setup.scale) >= 95  # one page wide, near full size


def test_the_printed_workbooks_read_swedish(closed_month, tmp_path):
    """Both workbooks through LibreOffice to PDF, as a person prints them: Swedish amounts, the
    header repeated on every page of the long visit sheet, the footer; first pages as artefacts."""
    import re

    office = need_program(("libreoffice", "soffice"), LIBREOFFICE, "LibreOffice")
    _, paths = closed_month
    books = [
        next(p for p in paths if p.name == n)
        for n in ("SE2321000131-E000000000101_VGP_2026-10.xlsx", "region_2026-10.xlsx")
    ]
    subprocess.run(
        [
            office,
            "--headless",
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            *map(str, books),
        ],
        capture_output=True,
        timeout=300,
        check=True,
    )
    artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    for book, name in zip(books, ("enhet-arbetsbok", "region-arbetsbok"), strict=True):
        pdf = tmp_path / (book.stem + ".pdf")
        _printed_as_people_read_it(pdf, name, landscape_first=name == "region-arbetsbok")
        pages = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout.split("\f")
        pages = [p for p in pages if p.strip()]
        assert re.search(r"\d{1,3}(?:[ \u00a0]\d{3})+,\d{2} kr", pages[0]), name
        assert not re.search(r"\d,\d{3}\.\d{2} kr", "".join(pages)), name  # no English-style amounts
        for number, page in enumerate(pages, start=1):  # (pdftotext may wrap the footer's centre)
            assert f"Sida {number} av {len(pages)}" in page and "Stängd 2026-11-04" in page, (name, number)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", str(pdf), str(artifacts / name)],
            check=True,
            timeout=120,
        )
        if name == "enhet-arbetsbok":
            visits = [p for p in pages if "Besöksdatum" in p]
            assert len(visits) > 3  # the visit sheet runs over several pages, each with its header
            subprocess.run(
                [
                    "pdftoppm",
                    "-png",
                    "-r",
                    "70",
                    "-f",
                    "3",
                    "-l",
                    "3",
                    str(pdf),
                    str(artifacts / "enhet-arbetsbok-besok"),
                ],
                check=True,
                timeout=120,
            )


def _printed_as_people_read_it(pdf: Path, name: str, *, landscape_first: bool) -> None:
    """Every page A4, nothing printed below 8 pt, the footer clear of the table (issue 32); the
    region's wide sheet landscape. Measured on the PDF as LibreOffice printed it (pdfminer)."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTTextLine

    def found(item, kind):
        """Every ``kind`` in pdfminer's layout tree below ``item``."""
        if isinstance(item, kind):
            yield item
        elif hasattr(item, "__iter__"):
            for x in item:
                yield from found(x, kind)

    pages = list(extract_pages(str(pdf)))
    assert pages, name
    for number, page in enumerate(pages, start=1):
        w, h = page.width, page.height
        assert sorted((round(w), round(h))) == [595, 842], (name, number, w, h)  # A4, not US Letter
        if number == 1 and landscape_first:
            assert w > h, (name, "the region sheet is printed landscape")
        sizes = [c.size for c in found(page, LTChar) if c.get_text().strip()]
        assert sizes and min(sizes) >= 8.0, (name, number, min(sizes))
        text = list(found(page, LTTextLine))
        foot = [t for t in text if f"Sida {number} av {len(pages)}" in t.get_text()]
        assert foot, (name, number)
        body = [t for t in text if t.y0 > foot[0].y1]  # everything above the footer's line
        others = [t for t in text if t not in foot and t not in body]
        # Nothing of the table shares the footer's band: whatever is not above it is the footer's
        # own left part, on the same baseline.
        assert all(abs(t.y0 - foot[0].y0) < 2 for t in others), (name, number, [t.get_text() for t in others])
        assert not body or min(t.y0 for t in body) - foot[0].y1 > 10, (name, number)  # a clear gap
