"""Small server-rendered SVG charts for the portal: horizontal bars and a line, nothing more. A
few lines of SVG need no charting library, and no script: the page keeps its strict
Content-Security-Policy. Every chart has a text alternative (``role="img"``, a title and a
description listing the values), and the page shows the same numbers in a table beside it
(``table``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

BAR = "#1f4e78"  # the portal's header blue: 9.5:1 on white, well above WCAG's 3:1 for graphics
NEGATIVE = "#8a1c1c"
TEXT = "#1b1b1b"
GRID = "#c8c8c8"  # gridlines: guides, not content (WCAG's 3:1 is for the line and the baseline)


def _desc(items: Sequence[tuple[str, float]], fmt: Callable[[float], str]) -> str:
    return "; ".join(f"{label}: {fmt(value)}" for label, value in items)


def bars(
    ident: str, title: str, items: Sequence[tuple[str, float]], fmt: Callable[[float], str], *, width: int = 560
) -> Markup:
    """Horizontal bars, one a row, labelled and valued; negative values to the left of zero."""
    if not items:
        return Markup("")
    row, label_w, value_w = 22, 190, 110
    plot = width - label_w - value_w
    lo, hi = min(0.0, *(v for _, v in items)), max(0.0, *(v for _, v in items))
    span = (hi - lo) or 1.0
    zero = label_w + plot * (-lo / span)
    height = row * len(items) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" viewBox="0 0 {width} {height}">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(_desc(items, fmt))}</desc>'
    ]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        x0, x1 = sorted((zero, label_w + plot * ((value - lo) / span)))
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12" fill="{TEXT}">'
            f"{escape(label[:28])}</text>"
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{row - 8}" '
            f'fill="{NEGATIVE if value < 0 else BAR}"/>'
            f'<text x="{width - 4}" y="{y + 14}" text-anchor="end" font-size="12" fill="{TEXT}">'
            f"{escape(fmt(value))}</text>"
        )
    parts.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="2" y2="{height - 2}" stroke="{TEXT}" stroke-width="1"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round gridline values from ``lo`` (zero or below) to at least ``hi``: 1, 2 or 5 times a power of ten."""
    span = (hi - lo) or abs(hi) or 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = [first]
    while ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def line(
    ident: str,
    title: str,
    points: Sequence[tuple[str, float]],
    fmt: Callable[[float], str],
    *,
    width: int = 560,
    height: int = 200,
    tick_fmt: Callable[[float], str] | None = None,
) -> Markup:
    """A line over periods (oldest first): a value axis from zero with labelled gridlines, the zero
    baseline, straight segments between months (nothing invented between them), a dot on every
    month, and every month's value in the table beside it (``table``)."""
    if not points:
        return Markup("")
    tick_fmt = tick_fmt or fmt
    values = [v for _, v in points]
    ticks = _ticks(min(0.0, *values), max(0.0, *values))
    lo, hi = ticks[0], ticks[-1]
    left, right, bottom, top = 110, 16, 30, 10
    span = (hi - lo) or 1.0
    step = (width - left - right) / max(1, len(points) - 1)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / span)

    xy = [(left + (i * step if len(points) > 1 else (width - left - right) / 2), y(v)) for i, v in enumerate(values)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" viewBox="0 0 {width} {height}">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(_desc(points, fmt))}</desc>'
    ]
    for t in ticks:  # gridlines, each with its value; the zero line is the baseline, drawn solid
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            + (f'stroke="{TEXT}" stroke-width="1"/>' if t == 0 else f'stroke="{GRID}" stroke-width="1"/>')
            + f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" font-size="11" fill="{TEXT}">'
            f"{escape(tick_fmt(t))}</text>"
        )
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{y(lo):.1f}" stroke="{TEXT}" stroke-width="1"/>')
    parts.append(
        f'<polyline fill="none" stroke="{BAR}" stroke-width="2" stroke-linejoin="miter" points="'
        + " ".join(f"{x:.1f},{yy:.1f}" for x, yy in xy)
        + '"/>'
    )
    # A period label is about 50 px wide: with a year of points every label would overlap its
    # neighbours, so every n-th is named, counted back from the newest (always named).
    every = max(1, -(-60 // max(1, int(step))))
    last = len(points) - 1
    for i, ((label, _), (x, yy)) in enumerate(zip(points, xy, strict=True)):
        parts.append(f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3" fill="{BAR}"/>')
        if (last - i) % every == 0:
            anchor = "middle" if 0 < i < last or len(points) == 1 else ("start" if i == 0 else "end")
            parts.append(
                f'<text x="{x:.1f}" y="{height - 10}" text-anchor="{anchor}" font-size="11" fill="{TEXT}">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def table(
    ident: str, caption: str, heads: tuple[str, str], items: Sequence[tuple[str, float]], fmt: Callable[[float], str]
) -> Markup:
    """The numbers of a chart as a table, for whoever reads numbers rather than pictures."""
    if not items:
        return Markup("")
    rows = "".join(f'<tr><td>{escape(a)}</td><td class="num">{escape(fmt(v))}</td></tr>' for a, v in items)
    return Markup(
        f'<details class="chart-table" id="{ident}"><summary>{escape(caption)}</summary>'
        f'<table><thead><tr><th scope="col">{escape(heads[0])}</th><th scope="col" class="num">{escape(heads[1])}'
        f"</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )
