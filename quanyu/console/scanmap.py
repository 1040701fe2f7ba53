"""The scan map: consumer scans per city as bubbles on a schematic map of China, drawn
as inline SVG on the server (no map tiles, no network, no script).

Cities are placed by latitude and longitude (an equirectangular projection with the
longitude scaled by cos 36°, true to shape at central China's latitude) from the table
the anomaly detector already uses (:data:`quanyu.codes.anomalies.CITIES`), so a city the
map knows is a city distance checks know too. The map draws no borders: a graticule and
faint dots for the major cities give the shape, and the bubbles the data. A city not in
the table is returned in ``unknown`` for the page to list beside the map.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

from quanyu.codes.anomalies import CITIES, place

LON0, LON1, LAT0, LAT1 = 73.0, 136.0, 17.0, 54.0
WIDTH = 640
PAD = 24
_KX = math.cos(math.radians(36.0))
SCALE = (WIDTH - 2 * PAD) / ((LON1 - LON0) * _KX)
HEIGHT = round((LAT1 - LAT0) * SCALE + 2 * PAD)
R_MIN, R_MAX = 4.0, 22.0


@dataclass
class CityCount:
    """Scans in one place, the way the map groups them (canonical city name)."""

    name: str
    scans: int = 0
    genuine: int = 0
    raw: list[str] = field(default_factory=list)


@dataclass
class ScanMap:
    """The drawn map and what it could not place."""

    svg: str
    placed: list[CityCount]
    unknown: list[CityCount]
    no_city: int


def project(lat: float, lon: float) -> tuple[float, float]:
    """SVG (x, y) of a point."""
    return PAD + (lon - LON0) * _KX * SCALE, PAD + (LAT1 - lat) * SCALE


def group(rows: Iterable[tuple[str | None, int, int]]) -> tuple[list[CityCount], int]:
    """(city as scanned, scans, genuine) rows merged by canonical city name (pinyin and
    省/市 forms join their Chinese name), most scans first; and the scans with no city."""
    merged: dict[str, CityCount] = {}
    no_city = 0
    for raw, scans, genuine in rows:
        name = place(raw)
        if name is None:
            no_city += scans
            continue
        c = merged.setdefault(name, CityCount(name))
        c.scans += scans
        c.genuine += genuine
        c.raw.append(raw or "")
    return sorted(merged.values(), key=lambda c: (-c.scans, c.name)), no_city


def _text_width(text: str, size: float) -> float:
    return sum(size if ord(ch) > 0x2E80 else size * 0.6 for ch in text)


def _overlaps(box: tuple[float, float, float, float], boxes: list[tuple[float, ...]]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in boxes)


def render(
    rows: Iterable[tuple[str | None, int, int]], *, title: str, legend: tuple[str, str]
) -> ScanMap:
    """Draw the map of ``rows`` (city, scans, genuine scans).

    Args:
        title: the SVG's accessible title.
        legend: labels of the two marks, (all scans, not genuine).
    """
    cities, no_city = group(rows)
    placed = [c for c in cities if c.name in CITIES]
    unknown = [c for c in cities if c.name not in CITIES]
    top = max((c.scans for c in placed), default=1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="100%" role="img" aria-label="{escape(title)}" class="scanmap">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" rx="6" fill="#f3f6fa"/>',
    ]
    for meridian in range(80, 136, 10):
        x, _ = project(LAT0, meridian)
        out.append(f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}"'
                   ' stroke="#dde3ea" stroke-width="1"/>')  # fmt: skip
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" fill="#98a2b3"'
                   f' text-anchor="middle">{meridian}°E</text>')  # fmt: skip
    for parallel in range(20, 54, 10):
        _, y = project(parallel, LON0)
        out.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}"'
                   ' stroke="#dde3ea" stroke-width="1"/>')  # fmt: skip
        out.append(f'<text x="4" y="{y - 3:.1f}" font-size="10" fill="#98a2b3">{parallel}°N</text>')
    for name, (_prov, lat, lon) in CITIES.items():
        x, y = project(lat, lon)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="#c3cad4">'
                   f"<title>{escape(name)}</title></circle>")  # fmt: skip
    boxes: list[tuple[float, ...]] = []
    marks = []
    for c in placed:  # most scans first: they get the labels when space is short
        _prov, lat, lon = CITIES[c.name]
        x, y = project(lat, lon)
        r = R_MIN + (R_MAX - R_MIN) * math.sqrt(c.scans / top)
        bad = c.scans - c.genuine
        tip = escape(f"{c.name}: {c.scans} ({legend[0]}), {bad} ({legend[1]})")
        mark = [f'<g class="city" data-city="{escape(c.name)}"><title>{tip}</title>',
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="#1f6feb"'
                ' fill-opacity="0.45" stroke="#1f6feb" stroke-width="1.2"/>']  # fmt: skip
        if bad > 0:
            rb = max(2.5, r * math.sqrt(bad / c.scans))
            mark.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{rb:.1f}" fill="#c62828"'
                        ' fill-opacity="0.8"/>')  # fmt: skip
        label = f"{c.name} {c.scans}"
        w, h = _text_width(label, 12), 13.0
        for dx, dy, anchor in ((r + 3, 4, "start"), (-r - 3, 4, "end"), (0, -r - 4, "middle"),
                               (0, r + 13, "middle")):  # fmt: skip
            x0 = x + dx - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
            box = (x0, y + dy - h + 2, x0 + w, y + dy + 2)
            if box[0] >= 0 and box[2] <= WIDTH and not _overlaps(box, boxes):
                boxes.append(box)
                mark.append(f'<text x="{x + dx:.1f}" y="{y + dy:.1f}" font-size="12"'
                            f' text-anchor="{anchor}" fill="#1d2330" stroke="#f3f6fa"'
                            ' stroke-width="3" paint-order="stroke">'
                            f"{escape(label)}</text>")  # fmt: skip
                break
        mark.append("</g>")
        marks.append("".join(mark))
        boxes.append((x - r, y - r, x + r, y + r))
    out.extend(reversed(marks))  # small bubbles drawn last, on top of big ones
    ly = HEIGHT - PAD - 34
    out.append(f'<g font-size="11" fill="#475467" transform="translate({WIDTH - 170},{ly})">'
               '<rect x="-8" y="-14" width="170" height="44" rx="4" fill="#fff"'
               ' fill-opacity="0.85"/>'
               '<circle cx="2" cy="-2" r="6" fill="#1f6feb" fill-opacity="0.45"'
               ' stroke="#1f6feb"/>'
               f'<text x="14" y="2">{escape(legend[0])}</text>'
               '<circle cx="2" cy="18" r="4" fill="#c62828" fill-opacity="0.8"/>'
               f'<text x="14" y="22">{escape(legend[1])}</text></g>')  # fmt: skip
    out.append("</svg>")
    return ScanMap(svg="".join(out), placed=placed, unknown=unknown, no_city=no_city)
