"""The YOLO layout (Ultralytics): normalised label files per image and a data.yaml.

Detection labels are boxes, segmentation labels one outline per object (several polygons
merged), pose labels a box then (x, y, visibility) per keypoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import yaml

from vtp_dice.format import SPLITS, Split, Task
from vtp_dice.layout import Doc, Plan, class_index, classes_file, task_items
from vtp_dice.manifest import Manifest


def _norm(v: float, size: float) -> float:
    # Labels may overhang the image by a rounding error; YOLO rejects coordinates outside [0, 1].
    return min(max(v / size, 0.0), 1.0)


def _box(ann: Doc, w: int, h: int) -> list[float] | None:
    x, y, bw, bh = ann["bbox"]
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + bw, w), min(y + bh, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]


def merge_polygons(polygons: Sequence[Sequence[float]]) -> list[float]:
    """Several polygons of one object -> one outline: each extra part is joined to the first by a
    zero-width bridge between their nearest vertices (a YOLO label line holds one polygon)."""
    parts = [[(p[i], p[i + 1]) for i in range(0, len(p) - 1, 2)] for p in polygons if len(p) >= 6]
    if not parts:
        return []
    first, bridges = parts[0], dict[int, list[list[tuple[float, float]]]]()
    for part in parts[1:]:
        a, b = min(
            ((a, b) for a in range(len(first)) for b in range(len(part))),
            key=lambda ab: math.dist(first[ab[0]], part[ab[1]]),
        )
        bridges.setdefault(a, []).append(part[b:] + part[: b + 1])  # around the part, back to its bridge vertex
    out: list[tuple[float, float]] = []
    for a, point in enumerate(first):
        out.append(point)
        for loop in bridges.get(a, []):
            out += [*loop, point]
    return [v for point in out for v in point]


def yolo_label(task: Task, record: Doc, index: Mapping[int, int]) -> str:
    """One image's YOLO label file: `cls cx cy w h` | `cls x1 y1 ...` | `cls cx cy w h x y v ...`, normalised."""
    w, h = record["width"], record["height"]
    lines = []
    for ann in record["annotations"]:
        cls = index[ann["class_id"]]
        if task == "segmentation":
            flat = merge_polygons(ann.get("segmentation") or [])
            values = [_norm(v, w if i % 2 == 0 else h) for i, v in enumerate(flat)]
        else:
            box = _box(ann, w, h)
            if box is None:
                continue
            values = box
            if task == "pose":
                kpts = ann["keypoints"]
                for i in range(0, len(kpts), 3):
                    vis = int(kpts[i + 2])
                    values += [_norm(kpts[i], w), _norm(kpts[i + 1], h), float(vis)] if vis else [0.0, 0.0, 0.0]
        if values:
            lines.append(" ".join([str(cls), *(f"{v:.6f}" for v in values)]))
    return "".join(line + "\n" for line in lines)


def _flip_idx(names: Sequence[str]) -> list[int]:
    """Keypoint index after a horizontal flip: `left_*` and `right_*` swap; others map to themselves."""
    swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}
    where = {n: i for i, n in enumerate(names)}
    out = []
    for i, name in enumerate(names):
        mirrored = next((name.replace(a, b, 1) for a, b in swap.items() if a in name), name)
        out.append(where.get(mirrored, i))
    return out


def yolo_plan(
    task: Task, manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split], root: str | None
) -> Plan:
    """YOLO layout; `root` is data.yaml's `path` (None: Ultralytics uses the yaml's folder, right for zips)."""
    if task == "classification":
        raise ValueError("YOLO label files are for detection, segmentation and pose; use write_imagefolder")
    doc = docs[task]
    items, index = task_items(manifest, doc, splits), class_index(doc)
    by_id = {c["id"]: c for c in doc["classes"]}
    plan = Plan()
    for item in items:
        plan.images[f"images/{item.split}/{item.name}"] = item.entry
        stem = PurePosixPath(item.name).stem
        plan.files[f"labels/{item.split}/{stem}.txt"] = yolo_label(task, item.record, index).encode()
    present = {i.split for i in items}
    data: dict[str, Any] = {} if root is None else {"path": root}
    for split in SPLITS:  # train and val are required by Ultralytics even when empty
        if split in present or split != "test":
            data[split] = f"images/{split}"
            if split not in present:
                plan.dirs += [f"images/{split}", f"labels/{split}"]
    data["names"] = {i: by_id[cid]["name"] for cid, i in index.items()}
    if task == "pose":
        shapes = {len(c["keypoints"]) for c in doc["classes"] if c.get("keypoints")}
        if len(shapes) != 1:
            raise ValueError(f"YOLO pose needs one keypoint count for all classes, found {sorted(shapes)}")
        names = next(c["keypoints"] for c in doc["classes"] if c.get("keypoints"))
        kpt_names = {i: list(by_id[cid].get("keypoints") or names) for cid, i in index.items()}
        data.update(kpt_shape=[len(names), 3], flip_idx=_flip_idx(names), kpt_names=kpt_names)
    plan.files["data.yaml"] = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
    plan.files["dice_classes.json"] = classes_file(task, doc, items)
    return plan
