"""YOLO label files (Ultralytics): one object per line, coordinates normalised to [0, 1].

`read_lines` splits a file into numbered rows of numbers; `check_line` applies the rules of the
dataset's task and says what is wrong with a row, naming its file and line; `to_dice` turns a
good row into a DICE annotation in the pixels of the decoded image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vtp_dice.format import Problem, Task

INVALID = "yolo_label_invalid"
SHAPE = tuple[int, int]  # kpt_shape: keypoints per object, values per keypoint (2 or 3)


@dataclass(frozen=True)
class Row:
    """One label line: its number (1-based) and values (class first)."""

    line: int
    values: tuple[float, ...]


def read_lines(file: str, raw: bytes) -> tuple[list[Row], list[Problem]]:
    """The numbered rows of a label file; blank lines are skipped, like Ultralytics does."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [Problem("yolo_label_invalid", f"not UTF-8 text: {exc}", file)]
    rows, problems = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = tuple(float(v) for v in line.split())
        except ValueError:
            problems.append(Problem("yolo_label_invalid", f"not a row of numbers: {line.strip()[:80]!r}", file, line=n))
            continue
        if not all(math.isfinite(v) for v in values):
            problems.append(Problem("yolo_label_invalid", "NaN or infinity in a label", file, line=n))
            continue
        rows.append(Row(n, values))
    return rows, problems


def row_task(rows: list[Row]) -> Task:
    """Detection, unless a row holds more than a box: then every row is a polygon (segmentation)."""
    return "segmentation" if any(len(r.values) > 5 for r in rows) else "detection"


def check_line(file: str, row: Row, task: Task, classes: int, shape: SHAPE | None) -> list[Problem]:
    """What is wrong with one row for the task (class index, value count, coordinates outside [0, 1])."""
    out: list[Problem] = []

    def add(code: str, message: str) -> None:
        out.append(Problem(code, message, file, line=row.line))

    cls, coords = row.values[0], list(row.values[1:])
    if cls != int(cls) or not 0 <= cls < classes:
        add("yolo_class_unknown", f"class {_show(cls)} is not in names (0..{classes - 1})")
    if task == "segmentation":
        if len(coords) % 2:
            add(INVALID, f"{len(coords)} coordinates, a polygon needs pairs")
            return out
        if len(coords) < 6:
            add("polygon_too_few_points", f"a polygon needs 3 points, has {len(coords) // 2}")
        checked = coords
    elif task == "pose":
        assert shape is not None
        want = 4 + shape[0] * shape[1]
        if len(coords) != want:
            add(INVALID, f"{len(coords)} values after the class, kpt_shape {list(shape)} needs {want}")
            return out
        kpts = coords[4:]
        checked = coords[:4] + [v for i, v in enumerate(kpts) if i % shape[1] < 2]
    else:
        if len(coords) != 4:
            add(INVALID, f"{len(coords)} values after the class, a box needs 4")
            return out
        checked = coords
    bad = [v for v in checked if not 0.0 <= v <= 1.0]
    if bad:
        add("yolo_coordinate_out_of_range", f"normalised coordinate {_show(bad[0])} is outside [0, 1]")
    return out


def to_dice(row: Row, task: Task, shape: SHAPE | None, w: int, h: int) -> dict[str, Any]:
    """The DICE fields of a good row (class fields aside) in pixels of a `w` x `h` image."""
    coords = row.values[1:]
    if task == "segmentation":
        poly = [v * (w if i % 2 == 0 else h) for i, v in enumerate(coords)]
        xs, ys = poly[0::2], poly[1::2]
        x0, y0 = min(xs), min(ys)
        area = abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2
        return {
            "bbox": [x0, y0, max(xs) - x0, max(ys) - y0],
            "bbox_format": "xywh",
            "area": area,
            "iscrowd": 0,
            "segmentation": [poly],
        }
    cx, cy, bw, bh = coords[:4]
    out: dict[str, Any] = {
        "bbox": [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h],
        "bbox_format": "xywh",
        "area": bw * w * bh * h,
        "iscrowd": 0,
    }
    if task == "pose":
        assert shape is not None
        kpts: list[float | int] = []
        for k in range(shape[0]):
            x, y = coords[4 + k * shape[1]], coords[5 + k * shape[1]]
            # Two values per keypoint: Ultralytics treats every keypoint as visible.
            vis = coords[6 + k * shape[1]] if shape[1] == 3 else 2.0
            kpts += [x * w, y * h, int(vis) if vis == int(vis) else vis]
        out.update(keypoints=kpts, num_keypoints=sum(1 for v in kpts[2::3] if v))
    return out


def _show(v: float) -> str:
    return str(int(v)) if v == int(v) else repr(v)
