"""Small SVG charts for the report, written by hand so the HTML needs no plotting library and no network.

Each function returns an SVG document (a string). The report embeds it as a base64 `data:` image, so a
browser decodes it like any picture and the page stays one self-contained file.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from html import escape

REAL = "#4C72B0"
SYNTH = "#DD8452"
FONT = "font-family='DejaVu Sans, Arial, sans-serif'"


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _doc(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT} font-size='11'>"
        f"<rect width='100%' height='100%' fill='white'/>"
        f"<text x='{width / 2:.0f}' y='15' text-anchor='middle' font-size='12' font-weight='bold'>{escape(title)}</text>"
        + "".join(body) + "</svg>"
    )


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    a = abs(x)
    if a >= 1e6 or a < 1e-2:
        return f"{x:.1e}"
    if a >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _legend(x: float, y: float, labels: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for i, (label, color) in enumerate(labels):
        yy = y + i * 14
        out.append(f"<rect x='{x:.0f}' y='{yy - 8:.0f}' width='10' height='10' fill='{color}' fill-opacity='0.7'/>"
                   f"<text x='{x + 14:.0f}' y='{yy + 1:.0f}'>{escape(label)}</text>")
    return out


def histogram(edges: Sequence[float], series: Sequence[tuple[str, Sequence[float], str]], title: str,
              xlabel: str = "", width: int = 380, height: int = 220, ticks: Sequence[float] | None = None) -> str:
    """Overlaid bar histograms: `series` are (label, share per bin, colour) over the same bins.

    `ticks` are the values printed under the bin edges (default: the edges; e.g. original units on a log axis).
    """
    ticks = list(edges) if ticks is None else list(ticks)
    left, right, top, bottom = 44, 24, 24, 40
    pw, ph = width - left - right, height - top - bottom
    n = len(edges) - 1
    peak = max((max(v) for _, v, _ in series if len(v)), default=1.0) or 1.0
    body = [f"<line x1='{left}' y1='{top + ph}' x2='{left + pw}' y2='{top + ph}' stroke='#333'/>",
            f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + ph}' stroke='#333'/>"]
    bw = pw / max(n, 1)
    for _, values, color in series:
        for i, v in enumerate(values):
            h = ph * v / peak
            body.append(f"<rect x='{left + i * bw:.1f}' y='{top + ph - h:.1f}' width='{max(bw - 0.5, 0.5):.1f}' "
                        f"height='{h:.1f}' fill='{color}' fill-opacity='0.55'/>")
    for frac in (0, 0.5, 1):
        y = top + ph * (1 - frac)
        body.append(f"<text x='{left - 4}' y='{y + 4:.0f}' text-anchor='end'>{frac * peak:.0%}</text>")
    for i in (0, n // 2, n):
        body.append(f"<text x='{left + i * bw:.0f}' y='{top + ph + 13}' text-anchor='middle'>{_fmt(ticks[i])}</text>")
    if xlabel:
        body.append(f"<text x='{left + pw / 2:.0f}' y='{height - 12}' text-anchor='middle' fill='#555'>{escape(xlabel)}</text>")
    body += _legend(left + pw - 90, top + 10, [(label, color) for label, _, color in series])
    return _doc(width, height, body, title)


def bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], title: str,
         width: int = 380, row: int = 16, axis: str = "share of rows") -> str:
    """Horizontal grouped bars: one row per label, one bar per series (shares of rows, or what `axis` says)."""
    left, right, top = 130, 40, 24
    height = top + row * len(labels) + 36
    pw = width - left - right
    peak = max((max(v) for _, v, _ in series if len(v)), default=1.0) or 1.0
    bh = (row - 3) / max(len(series), 1)
    body = []
    for i, label in enumerate(labels):
        y = top + i * row
        short = label if len(label) <= 20 else label[:19] + "…"
        body.append(f"<text x='{left - 4}' y='{y + row / 2 + 4:.0f}' text-anchor='end'>{escape(short)}</text>")
        for j, (_, values, color) in enumerate(series):
            w = pw * values[i] / peak
            body.append(f"<rect x='{left}' y='{y + 1 + j * bh:.1f}' width='{w:.1f}' height='{bh:.1f}' "
                        f"fill='{color}' fill-opacity='0.8'/>")
    body.append(f"<text x='{left + pw}' y='{height - 20}' text-anchor='end' fill='#555'>{axis} (max {peak:.0%})</text>")
    body += _legend(left, height - 8, [(s[0], s[2]) for s in series][:1])
    body += _legend(left + 110, height - 8, [(s[0], s[2]) for s in series][1:2])
    return _doc(width, height, body, title)


def heatmap(names: Sequence[str], matrix: Sequence[Sequence[float | None]], title: str, cell: int = 0) -> str:
    """A lower-triangle matrix of scores in [0, 1] (None: not scored); red is low, green is high."""
    n = len(names)
    cell = cell or max(10, min(34, 600 // max(n, 1)))
    left, top = 150, 28
    width, height = left + n * cell + 80, top + n * cell + 120
    body = []
    for i, name in enumerate(names):
        short = name if len(name) <= 22 else name[:21] + "…"
        body.append(f"<text x='{left - 4}' y='{top + i * cell + cell / 2 + 4:.0f}' text-anchor='end'>{escape(short)}</text>")
        x = left + i * cell + cell / 2
        y = top + n * cell + 6
        body.append(f"<text x='{x:.0f}' y='{y}' transform='rotate(60 {x:.0f} {y})'>{escape(short)}</text>")
        for j in range(n):
            v = matrix[i][j]
            if j > i:
                continue
            fill = "#eeeeee" if v is None or not math.isfinite(v) else _color(v)
            label = "" if v is None or not math.isfinite(v) else f"{v:.2f}"
            body.append(f"<rect x='{left + j * cell}' y='{top + i * cell}' width='{cell - 1}' height='{cell - 1}' "
                        f"fill='{fill}'><title>{escape(names[i])} × {escape(names[j])}: {label or 'not scored'}</title></rect>")
            if cell >= 28 and label:
                body.append(f"<text x='{left + j * cell + cell / 2:.0f}' y='{top + i * cell + cell / 2 + 3:.0f}' "
                            f"text-anchor='middle' font-size='8'>{label}</text>")
    for k in range(11):  # colour scale
        body.append(f"<rect x='{left + n * cell + 20}' y='{top + (10 - k) * 12}' width='14' height='12' fill='{_color(k / 10)}'/>")
    body.append(f"<text x='{left + n * cell + 38}' y='{top + 10}'>1.0</text>"
                f"<text x='{left + n * cell + 38}' y='{top + 130}'>0.0</text>")
    return _doc(width, height, body, title)


def _color(v: float) -> str:
    """Red (0) → yellow (0.5) → green (1)."""
    v = min(max(v, 0.0), 1.0)
    if v < 0.5:
        r, g = 215, int(60 + 2 * v * 160)
    else:
        r, g = int(215 - (v - 0.5) * 2 * 175), 190
    return f"rgb({r},{g},70)"
