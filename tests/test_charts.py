"""The portal's charts as a person reads them (issue 32): a value axis from zero with labelled
gridlines and a solid zero baseline, straight lines between months, every bar valued, and the
numbers as a table beside each chart."""

from __future__ import annotations

import re

from vardfil.portal import charts
from vardfil.swedish import kronor, percent, whole_kronor

POINTS = [("2026-08", 16_200_000.0), ("2026-09", 16_244_047.46), ("2026-10", 16_308_960.26)]


def _y_of(svg: str, value_label: str) -> float:
    m = re.search(r'y1="([\d.]+)" y2="\1" stroke="#1b1b1b"[^>]*/><text[^>]*>' + re.escape(value_label), svg)
    assert m, value_label
    return float(m.group(1))


def test_the_line_starts_at_zero_with_labelled_gridlines_and_straight_segments():
    svg = str(charts.line("c", "Summa", POINTS, kronor, tick_fmt=whole_kronor))
    ticks = re.findall(r'<text x="104" [^>]*>([^<]+)</text>', svg)  # the value axis, left of the plot
    assert ticks[0] == "0 kr" and len(ticks) >= 3  # the axis begins at zero: no zoomed-in drama
    assert ticks[-1].replace("\u00a0", " ") == "20 000 000 kr"  # a round top at or above the largest
    baseline = _y_of(svg, "0 kr")
    dots = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert len(dots) == 3 and all(y < baseline for y in dots)  # every month above the baseline
    # Straight segments between the months, nothing between them: a polyline, no curve commands.
    assert "<polyline" in svg and "<path" not in svg and " C" not in svg
    assert all(label in svg for label, _ in POINTS)  # every month is named (three fit)
    assert kronor(POINTS[-1][1]) in svg  # the text alternative carries every value


def test_a_line_through_negative_values_keeps_zero_inside():
    svg = str(
        charts.line("c", "Rättelser", [("2026-09", -5000.0), ("2026-10", 12000.0)], kronor, tick_fmt=whole_kronor)
    )
    ticks = re.findall(r'<text x="104" [^>]*>([^<]+)</text>', svg)  # the value axis, left of the plot
    assert ticks[0].startswith("-") and "0 kr" in ticks


def test_every_bar_is_valued_and_the_zero_line_drawn():
    items = [("Vårdcentralen Ängen", 0.062), ("Rehab Fyrbåken", 0.0), ("Hälsocentralen Centrum", 0.033)]
    svg = str(charts.bars("b", "Avvisade", items, percent))
    assert all(percent(v) in svg for _, v in items)
    assert re.search(r'<line x1="([\d.]+)" x2="\1" y1="2"', svg)  # the zero line


def test_each_chart_has_its_numbers_as_a_table():
    html = str(charts.table("t", "Siffrorna i diagrammet", ("Period", "Summa"), POINTS, kronor))
    assert html.startswith('<details class="chart-table"') and html.count("<tr>") == 4
    assert all(kronor(v) in html for _, v in POINTS) and '<th scope="col">Period</th>' in html
