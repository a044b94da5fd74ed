"""Small server-rendered SVG charts for the portal: horizontal bars and a line, nothing more. A
few lines of SVG need no charting library, and no script: the page keeps its strict
Content-Security-Policy. Every chart has a text alternative (``role="img"``, a title and a
description listing the values), and the page shows the same numbers in a table beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

BAR = "#1f4e78"  # the portal's header blue: 9.5:1 on white, well above WCAG's 3:1 for graphics
NEGATIVE = "#8a1c1c"
TEXT = "#1b1b1b"


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


def line(
    ident: str,
    title: str,
    points: Sequence[tuple[str, float]],
    fmt: Callable[[float], str],
    *,
    width: int = 560,
    height: int = 180,
) -> Markup:
    """A line over periods (oldest first), with a dot and the label of every point."""
    if not points:
        return Markup("")
    left, bottom, top = 10, 30, 24
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = (width - 2 * left) / max(1, len(points) - 1)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / span)

    xy = [(left + i * step, y(v)) for i, v in enumerate(values)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" viewBox="0 0 {width} {height}">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(_desc(points, fmt))}</desc>',
        f'<polyline fill="none" stroke="{BAR}" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{yy:.1f}" for x, yy in xy)
        + '"/>',
    ]
    # A period label is about 50 px wide: with a year of points every label would overlap its
    # neighbours, so every n-th is named, counted back from the newest (always named).
    every = max(1, -(-60 // max(1, int(step))))
    last = len(points) - 1
    for i, ((label, _), (x, yy)) in enumerate(zip(points, xy, strict=True)):
        parts.append(f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3" fill="{BAR}"/>')
        if (last - i) % every == 0:
            anchor = "start" if i == 0 else ("end" if i == last else "middle")
            parts.append(
                f'<text x="{x:.1f}" y="{height - 10}" text-anchor="{anchor}" font-size="11" fill="{TEXT}">'
                f"{escape(label)}</text>"
            )
    parts.append(f'<text x="{left}" y="14" font-size="11" fill="{TEXT}">{escape(fmt(hi))}</text></svg>')
    return Markup("".join(parts))
