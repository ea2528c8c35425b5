"""Line charts in the terminal with Unicode braille dots and Rich colours (no plotting library).

Each character cell holds 2 x 4 dots, so a 60 x 10 chart has 120 x 40 points of resolution.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from rich.text import Text

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_white")
# Braille dot bits by (column, row) inside a cell (Unicode U+2800 block).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))

Series = Mapping[str, Sequence[tuple[float, float]]]


def _segment(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """The dots of a straight line (Bresenham)."""
    points, dx, dy = [], abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    error = dx + dy
    while True:
        points.append((x0, y0))
        if x0 == x1 and y0 == y1:
            return points
        twice = 2 * error
        if twice >= dy:
            error, x0 = error + dy, x0 + sx
        if twice <= dx:
            error, y0 = error + dx, y0 + sy


def chart(title: str, series: Series, width: int = 60, height: int = 10) -> Text:
    """One chart of several series sharing both axes, with y labels, x range and a legend."""
    values = [(x, y) for points in series.values() for x, y in points]
    text = Text(f"{title}\n", style="bold")
    if not values:
        return text + Text("(no data)\n")
    xmin, xmax = min(x for x, _ in values), max(x for x, _ in values)
    ymin, ymax = min(y for _, y in values), max(y for _, y in values)
    if ymax == ymin:  # a flat line still needs a range (never below 0 for values that are not)
        ymin, ymax = (ymin - 0.5 if ymin < 0 else max(0.0, ymin - 0.5)), ymax + 0.5
    cols, rows = width * 2, height * 4
    cells: dict[tuple[int, int], tuple[int, str]] = {}

    def dot(px: int, py: int, colour: str) -> None:
        cell = (px // 2, py // 4)
        bits, _ = cells.get(cell, (0, colour))
        cells[cell] = (bits | _DOTS[px % 2][py % 4], colour)

    def scale(x: float, y: float) -> tuple[int, int]:
        px = 0 if xmax == xmin else round((x - xmin) / (xmax - xmin) * (cols - 1))
        py = round((ymax - y) / (ymax - ymin) * (rows - 1))
        return px, py

    for i, points in enumerate(series.values()):
        colour = COLOURS[i % len(COLOURS)]
        scaled = [scale(x, y) for x, y in sorted(points)]
        for (x0, y0), (x1, y1) in itertools.pairwise(scaled):
            for px, py in _segment(x0, y0, x1, y1):
                dot(px, py, colour)
        for px, py in scaled[:1] if len(scaled) == 1 else []:
            dot(px, py, colour)
    label_width = max(len(f"{ymax:.3g}"), len(f"{ymin:.3g}"))
    for row in range(height):
        label = f"{ymax:.3g}" if row == 0 else f"{ymin:.3g}" if row == height - 1 else ""
        text.append(f"{label:>{label_width}} ┤", style="dim")
        for col in range(width):
            bits, colour = cells.get((col, row), (0, ""))
            text.append(chr(0x2800 + bits), style=colour or None)
        text.append("\n")
    axis = f"{' ' * label_width} └{'─' * width}\n"
    text.append(axis, style="dim")
    left, right = f"{xmin:g}", f"{xmax:g}"
    text.append(f"{' ' * (label_width + 2)}{left}{right:>{max(1, width - len(left))}}  (epoch)\n", style="dim")
    for i, name in enumerate(series):
        text.append("  ● ", style=COLOURS[i % len(COLOURS)])
        text.append(name)
    text.append("\n")
    return text
