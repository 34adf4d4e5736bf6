"""The equity curve as inline SVG, drawn on the server (no chart library in the browser).

Cumulative net P&L after each closed trade, as a step line from zero, with
the zero line, the day's high and low labelled, and the area above/below
zero tinted. The SVG scales to its container (``viewBox``), so the page
layout does not move when it is redrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape

from aitrapp.api.ui.fmt import ist, pnl

WIDTH, HEIGHT = 1200, 220  # about the panel's size at 1280 wide: text keeps its proportions
PAD_L, PAD_R, PAD_T, PAD_B = 84, 16, 14, 26


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    equity: Decimal  # cumulative net P&L after this trade, rupees


def equity_points(trades: Sequence[tuple[datetime, Decimal]]) -> list[Point]:
    """``(closed_at, net_pnl)`` pairs, in any order, to cumulative points in time order."""
    total = Decimal(0)
    points = []
    for at, net in sorted(trades, key=lambda t: t[0]):
        total += net
        points.append(Point(at, total))
    return points


def equity_svg(points: Sequence[Point], *, title: str = "Equity (net P&L, rupees)") -> str:
    head = (
        f'<svg class="equity" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet" '
        'xmlns="http://www.w3.org/2000/svg">'
    )
    if not points:
        return (
            f'{head}<text x="{WIDTH / 2}" y="{HEIGHT / 2}" class="empty" '
            'text-anchor="middle">No closed trades yet</text></svg>'
        )
    values = [Decimal(0), *(p.equity for p in points)]
    lo, hi = min(values), max(values)
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    span = hi - lo
    plot_w = WIDTH - PAD_L - PAD_R
    plot_h = HEIGHT - PAD_T - PAD_B
    n = len(points)

    def x(i: int) -> float:  # trade index: evenly spaced, so bursts stay readable
        return PAD_L + plot_w * i / n

    def y(v: Decimal) -> float:
        return PAD_T + float((hi - v) / span) * plot_h

    # A step line: flat until the next trade closes.
    path = [f"M{x(0):.1f},{y(Decimal(0)):.1f}"]
    prev = Decimal(0)
    for i, p in enumerate(points, start=1):
        path.append(f"L{x(i):.1f},{y(prev):.1f}")
        path.append(f"L{x(i):.1f},{y(p.equity):.1f}")
        prev = p.equity
    line = " ".join(path)
    zero = y(Decimal(0))
    area = f"{line} L{x(n):.1f},{zero:.1f} Z"
    final = points[-1].equity
    cls = "up" if final > 0 else "down" if final < 0 else "flat"
    parts = [
        head,
        f"<title>{escape(title)}</title>",
        f'<clipPath id="eq-above"><rect x="0" y="0" width="{WIDTH}" height="{zero:.1f}"/>'
        "</clipPath>",
        f'<clipPath id="eq-below"><rect x="0" y="{zero:.1f}" width="{WIDTH}" '
        f'height="{HEIGHT - zero:.1f}"/></clipPath>',
        f'<path class="area up" d="{area}" clip-path="url(#eq-above)"/>',
        f'<path class="area down" d="{area}" clip-path="url(#eq-below)"/>',
        f'<line class="zero" x1="{PAD_L}" y1="{zero:.1f}" x2="{WIDTH - PAD_R}" y2="{zero:.1f}"/>',
        f'<path class="line {cls}" d="{line}"/>',
        _label(PAD_L - 6, y(hi) + 4, pnl(hi)),
        _label(PAD_L - 6, y(lo) + 4, pnl(lo)),
        _label(PAD_L - 6, zero + 4, "0") if y(hi) + 12 < zero < y(lo) - 12 else "",
        f'<text class="axis" x="{PAD_L}" y="{HEIGHT - 6}">{escape(ist(points[0].at))}</text>',
        f'<text class="axis" x="{WIDTH - PAD_R}" y="{HEIGHT - 6}" text-anchor="end">'
        f"{escape(ist(points[-1].at))} · {n} trades · {escape(pnl(final))}</text>",
        "</svg>",
    ]
    return "".join(parts)


def _label(x: float, y: float, text: str) -> str:
    return f'<text class="axis" x="{x:.1f}" y="{y:.1f}" text-anchor="end">{escape(text)}</text>'
