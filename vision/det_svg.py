"""A DET curve (FNIR against FPIR, both on log axes) as one self-contained SVG 1.1 file.

Drawn by hand, like bench/threshold_plot.py: no plotting library is installed on a station. A rate
of 0 cannot sit on a log axis, so it is drawn on the axis floor (one search in the set, rounded
down to a decade) and the floor is labelled as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from vision.identification import DetPoint, IdentificationResult

W, H = 720, 520
LEFT, RIGHT, TOP, BOTTOM = 72, 28, 44, 60
COLOURS = ("#1f4e79", "#c0392b", "#2e9d5b", "#8e44ad", "#d68910")


@dataclass(frozen=True, slots=True)
class DetSeries:
    """One curve: its label, its points, and the operating point to mark on it (FPIR, FNIR) if any."""

    label: str
    points: tuple[DetPoint, ...]
    operating: tuple[float, float] | None = None


def _floor_decade(count: int) -> float:
    """The lowest decade that one search in ``count`` reaches (1/1000 → 1e-3, 1/620 → 1e-3)."""
    return 10.0 ** math.floor(math.log10(1.0 / max(count, 1)))


def det_svg(series: Sequence[DetSeries], title: str, *, strangers: int, mated: int, unit: str = "searches") -> str:
    """The SVG text; ``strangers``/``mated`` (search counts) set the axis floors; ``unit`` names what was
    counted (bench/doorway.py counts passes of people, not searches)."""
    x_lo, y_lo = _floor_decade(strangers), _floor_decade(mated)
    x_lo, y_lo = min(x_lo, 1e-3), min(y_lo, 1e-2)

    def lx(v: float) -> float:
        v = min(max(v, x_lo), 1.0)
        return LEFT + (math.log10(v) - math.log10(x_lo)) / -math.log10(x_lo) * (W - LEFT - RIGHT)

    def ly(v: float) -> float:
        v = min(max(v, y_lo), 1.0)
        return H - BOTTOM - (math.log10(v) - math.log10(y_lo)) / -math.log10(y_lo) * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="13">',
        f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for exp in range(round(math.log10(x_lo)), 1):
        v = 10.0**exp
        out.append(f'<line x1="{lx(v):.1f}" y1="{ly(y_lo):.1f}" x2="{lx(v):.1f}" y2="{ly(1):.1f}" stroke="#e5e5e5"/>')
        label = "0 / floor" if exp == round(math.log10(x_lo)) else f"{v:g}"
        out.append(f'<text x="{lx(v):.1f}" y="{ly(y_lo) + 20:.1f}" text-anchor="middle">{label}</text>')
    for exp in range(round(math.log10(y_lo)), 1):
        v = 10.0**exp
        out.append(f'<line x1="{lx(x_lo):.1f}" y1="{ly(v):.1f}" x2="{lx(1):.1f}" y2="{ly(v):.1f}" stroke="#e5e5e5"/>')
        label = "0 / floor" if exp == round(math.log10(y_lo)) else f"{v:g}"
        out.append(f'<text x="{lx(x_lo) - 8:.1f}" y="{ly(v) + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(
        f'<rect x="{lx(x_lo):.1f}" y="{ly(1):.1f}" width="{lx(1) - lx(x_lo):.1f}" '
        f'height="{ly(y_lo) - ly(1):.1f}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{(lx(x_lo) + lx(1)) / 2:.1f}" y="{H - 16}" text-anchor="middle">'
        f"FPIR: share of {strangers} stranger {escape(unit)} named (log)</text>"
    )
    out.append(
        f'<text transform="translate(18 {(ly(y_lo) + ly(1)) / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"FNIR: share of {mated} mated {escape(unit)} missed (log)</text>"
    )
    for k, s in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        # a step curve: FNIR holds until the next threshold changes FPIR
        pts: list[str] = []
        for p in s.points:
            pts.append(f"{lx(p.fpir):.1f},{ly(p.fnir):.1f}")
        if pts:
            out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="2.2"/>')
        if s.operating is not None:
            ox, oy = lx(s.operating[0]), ly(s.operating[1])
            out.append(f'<circle cx="{ox:.1f}" cy="{oy:.1f}" r="5" fill="{colour}" stroke="#000"/>')
        # the legend in the lower left, where a useful curve never goes (few strangers named, few missed)
        y = ly(y_lo) - 16 - 20 * (len(series) - 1 - k)
        x0 = lx(x_lo) + 16
        out.append(
            f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x0 + 28:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="3"/>'
        )
        note = " (dot: shipped operating point)" if s.operating is not None else ""
        out.append(f'<text x="{x0 + 36:.1f}" y="{y + 4:.1f}">{escape(s.label + note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def result_svg(result: IdentificationResult) -> str:
    """The DET curve of one run, its shipped operating point marked (what ``--det FILE.svg`` writes)."""
    label = f"{result.model} (threshold {result.threshold:.3f}, margin {result.margin:.3f})"
    title = (
        f"DET, open-set 1:N: {result.people} people enrolled with {result.enrol_n} photos, "
        f"{result.mated} mated and {result.strangers} stranger searches"
    )
    series = DetSeries(label, result.det, (result.fpir, result.fnir))
    return det_svg([series], title, strangers=result.strangers, mated=result.mated)
