"""Venn diagrams of two or three sets as inline SVG, drawn on the server.

Circles have areas proportional to the sets' sizes. Two circles overlap by exactly the
size of their intersection (the distance between centres is solved for it); three are
placed from their three pairwise overlaps, which is approximate — three circles cannot
show every combination exactly — so the numbers in each region are the truth and the
picture a guide. Each region is labelled with its count at the middle of the points
that fall in exactly that region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

WIDTH, HEIGHT = 480, 340
COLOURS = ("#1f6feb", "#e8590c", "#2e7d32")
LETTERS = "ABC"
_PAD_X, _PAD_Y = 100, 34  # room around the circles for the set names (sides, top/bottom)


@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    r: float


def lens_area(r1: float, r2: float, d: float) -> float:
    """The area two circles of radii ``r1``, ``r2`` whose centres are ``d`` apart share."""
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r1 - r2):
        return math.pi * min(r1, r2) ** 2
    a1 = r1 * r1 * math.acos((d * d + r1 * r1 - r2 * r2) / (2 * d * r1))
    a2 = r2 * r2 * math.acos((d * d + r2 * r2 - r1 * r1) / (2 * d * r2))
    k = 0.5 * math.sqrt((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2))
    return a1 + a2 - k


def distance_for(r1: float, r2: float, overlap: float) -> float:
    """The distance between centres at which two circles share ``overlap`` area."""
    lo, hi = abs(r1 - r2), r1 + r2
    if overlap <= 0:
        return hi + 0.05 * min(r1, r2)  # apart, with a small gap
    if overlap >= math.pi * min(r1, r2) ** 2:
        return lo  # the smaller inside the larger, touching its edge
    for _ in range(60):  # the lens shrinks as the circles move apart: bisect
        mid = (lo + hi) / 2
        if lens_area(r1, r2, mid) > overlap:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def layout(sizes: Sequence[int], pairs: dict[tuple[int, int], int]) -> list[Circle]:
    """Circles (in unscaled units, area = size) for two or three sets.

    ``pairs[(i, j)]`` is the size of the intersection of sets i and j (i < j).
    """
    radii = [math.sqrt(max(s, 0) / math.pi) or 0.0 for s in sizes]
    floor = max(max(radii) * 0.08, 1e-9)  # an empty set still shows as a small circle
    radii = [max(r, floor) for r in radii]
    d01 = distance_for(radii[0], radii[1], pairs.get((0, 1), 0))
    circles = [Circle(0.0, 0.0, radii[0]), Circle(d01, 0.0, radii[1])]
    if len(sizes) == 3:
        d02 = distance_for(radii[0], radii[2], pairs.get((0, 2), 0))
        d12 = distance_for(radii[1], radii[2], pairs.get((1, 2), 0))
        # the third centre from its distances to the first two (clamped to a triangle)
        d02 = min(max(d02, abs(d01 - d12)), d01 + d12)
        x = (d02 * d02 - d12 * d12 + d01 * d01) / (2 * d01) if d01 > 0 else 0.0
        y = math.sqrt(max(d02 * d02 - x * x, 0.0))
        circles.append(Circle(x, y, radii[2]))
    return circles


def fit(
    circles: list[Circle], width: int = WIDTH, height: int = HEIGHT, pad_x: float = _PAD_X
) -> list[Circle]:
    """The circles scaled and moved to fill the drawing, leaving room for labels."""
    left = min(c.x - c.r for c in circles)
    right = max(c.x + c.r for c in circles)
    top = min(c.y - c.r for c in circles)
    bottom = max(c.y + c.r for c in circles)
    scale = min((width - 2 * pad_x) / (right - left), (height - 2 * _PAD_Y) / (bottom - top))
    dx = (width - (right - left) * scale) / 2 - left * scale
    dy = (height - (bottom - top) * scale) / 2 - top * scale
    return [Circle(c.x * scale + dx, c.y * scale + dy, c.r * scale) for c in circles]


def label_points(
    circles: list[Circle], width: int = WIDTH, height: int = HEIGHT
) -> dict[tuple[int, ...], tuple[float, float]]:
    """Where to write each region's count: the point of the region (the sets it is
    inside, as indexes) farthest from its edges, found on a grid."""
    xs, ys = np.meshgrid(np.arange(0, width, 3.0), np.arange(0, height, 3.0))
    signed = np.stack([np.hypot(xs - c.x, ys - c.y) - c.r for c in circles])  # < 0: inside
    inside = signed < 0
    clearance = np.abs(signed).min(axis=0)  # distance to the nearest circle's edge
    out: dict[tuple[int, ...], tuple[float, float]] = {}
    n = len(circles)
    for mask_bits in range(1, 2**n):
        want = tuple(i for i in range(n) if mask_bits >> i & 1)
        here = np.ones_like(inside[0])
        for i in range(n):
            here &= inside[i] if i in want else ~inside[i]
        if not here.any():
            continue
        best = np.argmax(np.where(here, clearance, -1.0))
        out[want] = (float(xs.flat[best]), float(ys.flat[best]))
    return out


def text_width(text: str, size: float = 13) -> float:
    """About how wide a bold label is: CJK characters are square, the rest narrower."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.62 for ch in text)


def name_spots(
    circles: list[Circle], labels: list[str] | None = None
) -> list[tuple[float, float, str]]:
    """Where each set's name goes: outside its circle, away from the others' middle, as
    (x, y, text-anchor)."""
    mx = sum(c.x for c in circles) / len(circles)
    my = sum(c.y for c in circles) / len(circles)
    defaults = ((-1.0, 0.0), (1.0, 0.0), (0.0, 1.0))
    out = []
    for i, c in enumerate(circles):
        dx, dy = c.x - mx, c.y - my
        norm = math.hypot(dx, dy)
        dx, dy = (dx / norm, dy / norm) if norm > 1e-6 else defaults[i]
        x, y = c.x + dx * (c.r + 8), c.y + dy * (c.r + 8) + 5
        anchor = "start" if dx > 0.35 else "end" if dx < -0.35 else "middle"
        y = y + 10 if dy > 0.35 else y - 4 if dy < -0.35 else y
        w = text_width(labels[i]) if labels else 0.0
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        x += max(0.0, 4 - left) - max(0.0, left + w - (WIDTH - 4))  # keep it in the drawing
        out.append((x, min(max(y, 14.0), HEIGHT - 4.0), anchor))
    return out


def svg(names: Sequence[str], sizes: Sequence[int], regions: dict[tuple[int, ...], int]) -> str:
    """An SVG of two or three sets: ``regions[(0, 2)]`` is the number in sets 0 and 2 only.

    Raises:
        ValueError: not two or three sets.
    """
    n = len(names)
    if n not in (2, 3) or len(sizes) != n:
        raise ValueError(f"a Venn diagram takes two or three sets, not {n}")
    pairs = {
        (i, j): sum(v for k, v in regions.items() if i in k and j in k)
        for i in range(n)
        for j in range(i + 1, n)
    }
    labels = [f"{LETTERS[i]} {_short(name)}" for i, name in enumerate(names)]
    pad_x = min(150.0, max(60.0, max(text_width(x) for x in labels) + 14))
    circles = fit(layout(sizes, pairs), pad_x=pad_x)
    spots = label_points(circles)
    parts = [
        f'<svg class="venn" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="{WIDTH}" height="{HEIGHT}" role="img">'
    ]
    for i, c in enumerate(circles):
        parts.append(
            f'<circle cx="{c.x:.1f}" cy="{c.y:.1f}" r="{c.r:.1f}" fill="{COLOURS[i]}"'
            f' fill-opacity="0.18" stroke="{COLOURS[i]}" stroke-width="2"/>'
        )
    for i, (x, y, anchor) in enumerate(name_spots(circles, labels)):
        parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{COLOURS[i]}"'
            f' font-weight="600" font-size="13" data-set="{i}">{escape(labels[i])}</text>'
        )
    for inside, count in sorted(regions.items()):
        if inside not in spots:
            continue  # a region too small to draw: the table beside it has the number
        x, y = spots[inside]
        region = "-".join(str(i) for i in inside)
        parts.append(
            f'<text x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle" font-size="14"'
            f' data-region="{region}">{count:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, most: int = 14) -> str:
    return name if len(name) <= most else name[: most - 1] + "…"
