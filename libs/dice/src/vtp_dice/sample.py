"""A synthetic DICE dataset of coloured shapes, for tests, demos and benchmarks.

Three classes (circle, square, triangle), each with its own solid colour, on a
light plain or noisy background; 1-4 shapes per image that never overlap, so
every box and polygon is exact. The same images serve every task: detection
(boxes), segmentation (polygons + boxes), classification (the class of the
largest shape) and, on request, pose (three keypoints per shape: its centre and
its highest and lowest points). It is deliberately easy: a small detector trained from scratch
for a few epochs should reach a useful mAP, which makes it a smoke test for a
whole training pipeline (see bench/sample_learnability.py).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from vtp_dice.format import ANNOTATION_FILES, DICE_TASK_TYPE, METADATA_FILE, Split, Task

CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("circle", (220, 40, 40)),
    ("square", (40, 160, 60)),
    ("triangle", (40, 80, 220)),
)
SOURCE = "vtp_dice.sample"
KEYPOINTS = ("centre", "top", "bottom")  # pose: no left/right pair, so a flip maps each to itself
# Fixed timestamps: the files must be byte-identical for a seed, so nothing may come from the clock.
TIMESTAMP = "2025-01-01T00:00:00.000000+00:00"
# A fixed date for zip members, for the same reason (zip stores local times; 1980 is its epoch).
ZIP_DATE = (2025, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Shape:
    """One drawn shape: its class index in CLASSES and its outline in absolute pixels."""

    cls: int
    polygon: tuple[tuple[float, float], ...]
    bbox: tuple[float, float, float, float]  # x, y, w, h

    @property
    def area(self) -> float:
        """Polygon area (shoelace), the segmentation area; also ranks shapes for classification."""
        pts = self.polygon
        twice = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True))
        return abs(twice) / 2


def _outline(cls: int, cx: float, cy: float, r: float, rng: random.Random) -> list[tuple[float, float]]:
    """Vertices of a shape of circumradius `r` centred on (cx, cy)."""
    if cls == 0:  # circle: 16-24 points, as a labeling tool's polygon tool would produce
        n, start = rng.randint(16, 24), 0.0
    elif cls == 1:  # square, mildly rotated so boxes and polygons differ
        n, start = 4, math.radians(45 + rng.uniform(-20, 20))
    else:  # triangle, pointing roughly up
        n, start = 3, math.radians(-90 + rng.uniform(-20, 20))
    return [
        (cx + r * math.cos(start + 2 * math.pi * k / n), cy + r * math.sin(start + 2 * math.pi * k / n))
        for k in range(n)
    ]


def _place(rng: random.Random, size: tuple[int, int], count: int) -> list[Shape]:
    """Up to `count` shapes whose circumcircles do not touch (rejection sampling; some may not fit)."""
    w, h = size
    placed: list[tuple[float, float, float]] = []
    shapes: list[Shape] = []
    for _ in range(count):
        cls = rng.randrange(len(CLASSES))
        for _attempt in range(60):
            # Radii relative to the short side keep shapes large at any image size (learnable at imgsz 128).
            r = rng.uniform(0.13, 0.24) * min(w, h)
            cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
            if all(math.dist((cx, cy), (px, py)) > r + pr + 3 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        pts = [(round(x, 2), round(y, 2)) for x, y in _outline(cls, cx, cy, r, rng)]
        if cls == 0:  # the drawn disc's box, which the 16-24-gon sits inside
            box = (cx - r, cy - r, 2 * r, 2 * r)
        else:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        shapes.append(Shape(cls, tuple(pts), tuple(round(v, 2) for v in box)))  # type: ignore[arg-type]
    return shapes


def _render(rng: random.Random, size: tuple[int, int], shapes: list[Shape]) -> Image.Image:
    """A light background (plain or noisy) with the shapes filled in their class colours (jittered)."""
    w, h = size
    base = [rng.randint(175, 235) for _ in range(3)]
    if rng.random() < 0.5:
        image = Image.new("RGB", size, tuple(base))
    else:
        # Noise from our own RNG (not Image.effect_noise, which uses C rand()) keeps files deterministic.
        noise = Image.frombytes("L", size, rng.randbytes(w * h))
        image = Image.merge("RGB", [noise.point(lambda v, b=b: b + (v >> 3) - 16) for b in base])
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        colour = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in CLASSES[shape.cls][1])
        if shape.cls == 0:
            x, y, bw, bh = shape.bbox
            draw.ellipse((x, y, x + bw, y + bh), fill=colour)
        else:
            draw.polygon(list(shape.polygon), fill=colour)
    return image


def _annotation(task: Task, ann_id: int, image_id: int, shape: Shape) -> dict[str, Any]:
    name = CLASSES[shape.cls][0]
    ann: dict[str, Any] = {"id": ann_id, "image_id": image_id, "class_id": shape.cls, "class_name": name}
    if task in ("detection", "segmentation"):
        w, h = shape.bbox[2:]
        ann.update(bbox=list(shape.bbox), bbox_format="xywh", iscrowd=0, area=round(w * h, 2))
    if task == "segmentation":
        ann.update(segmentation=[[v for point in shape.polygon for v in point]], area=round(shape.area, 2))
    if task == "pose":
        w, h = shape.bbox[2:]
        ann.update(bbox=list(shape.bbox), bbox_format="xywh", iscrowd=0, area=round(w * h, 2))
        ann.update(keypoints=[v for point in _keypoints(shape) for v in (*point, 2)], num_keypoints=len(KEYPOINTS))
    ann["attributes"] = {}
    return ann


def _keypoints(shape: Shape) -> list[tuple[float, float]]:
    """Centre of the box, then the outline's highest and lowest points (the disc's, for a circle)."""
    x, y, w, h = shape.bbox
    centre = (round(x + w / 2, 2), round(y + h / 2, 2))
    if shape.cls == 0:
        return [centre, (centre[0], round(y, 2)), (centre[0], round(y + h, 2))]
    top, bottom = min(shape.polygon, key=lambda p: p[1]), max(shape.polygon, key=lambda p: p[1])
    return [centre, top, bottom]


def _document(
    task: Task, dataset_id: str, records: list[dict[str, Any]], per_image: list[list[Shape]]
) -> dict[str, Any]:
    """One annotation file; classification labels each image by its largest shape."""
    images, counts, next_id = [], dict.fromkeys((c[0] for c in CLASSES), 0), 1
    for record, shapes in zip(records, per_image, strict=True):
        chosen = [max(shapes, key=lambda s: s.area)] if task == "classification" and shapes else shapes
        anns = []
        for shape in chosen:
            anns.append(_annotation(task, next_id, record["id"], shape))
            counts[CLASSES[shape.cls][0]] += 1
            next_id += 1
        images.append({**record, "annotations": anns, "metadata": {"labeled_by": "sample@vtp.local", "source": SOURCE}})
    classes = [
        {"id": i, "name": name, "color": "#{:02x}{:02x}{:02x}".format(*rgb), "supercategory": "shape"}
        for i, (name, rgb) in enumerate(CLASSES)
    ]
    if task == "pose":
        for c in classes:
            c.update(keypoints=list(KEYPOINTS), skeleton=[[1, 2], [1, 3]])
    return {
        "format_version": "1.0",
        "dataset_id": dataset_id,
        "dataset_name": "vtp-sample-shapes",
        "task_type": DICE_TASK_TYPE[task],
        "created_at": TIMESTAMP,
        "last_modified_at": TIMESTAMP,
        "version": 1,
        "classes": classes,
        "images": images,
        "statistics": {"total_images": len(images), "total_annotations": next_id - 1, "class_distribution": counts},
    }


def generate(
    root: Path,
    images: int = 200,
    size: tuple[int, int] = (160, 128),
    seed: int = 0,
    tasks: Sequence[Task] = ("detection", "segmentation", "classification"),
    splits: bool = False,
    background_fraction: float = 0.05,
) -> Path:
    """Write a DICE dataset of `images` JPEGs of `size` (w, h) under `root`; byte-identical for a seed.

    `tasks` picks the annotation files; pose (keypoints) is written only when asked for, so the
    default dataset stays what it was.

    With `splits`, every image carries a `split` (about 80/15/5 train/val/test); otherwise the
    platform's split strategy assigns them. `background_fraction` of the images hold no shape
    (listed with empty annotations, as DICE background images are).
    """
    rng = random.Random(seed)
    # Separate streams, so turning `splits` on does not change a single pixel.
    split_rng, id_rng = random.Random(f"{seed}/splits"), random.Random(f"{seed}/ids")
    background = set(rng.sample(range(images), round(images * background_fraction)))
    records: list[dict[str, Any]] = []
    per_image: list[list[Shape]] = []
    for i in range(images):
        shapes = [] if i in background else _place(rng, size, rng.randint(1, 4))
        # Sub-folders, as real datasets have, so converters must flatten names.
        file_name = f"batch_{i // 100:02d}/{i:05d}.jpg"
        path = root / "images" / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        _render(rng, size, shapes).save(path, "JPEG", quality=92)
        record: dict[str, Any] = {"id": i + 1, "file_name": file_name, "width": size[0], "height": size[1], "depth": 3}
        if splits:
            roll = split_rng.random()
            split: Split = "train" if roll < 0.8 else "val" if roll < 0.95 else "test"
            record["split"] = split
        records.append(record)
        per_image.append(shapes)
    dataset_id = str(uuid.UUID(int=id_rng.getrandbits(128), version=4))
    for task in tasks:
        doc = _document(task, dataset_id, records, per_image)
        (root / ANNOTATION_FILES[task]).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    metadata = {
        "name": "vtp-sample-shapes",
        "description": "Synthetic coloured shapes (circle, square, triangle) for tests and demos.",
        "source": SOURCE,
        "seed": seed,
        "image_size": list(size),
        "license": "CC0-1.0",
    }
    (root / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return root


def zip_dataset(root: Path, out: Path) -> Path:
    """Zip a dataset root (as users upload it): images stored as-is, JSON deflated, deterministic."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), ZIP_DATE)
            # JPEGs do not compress; deflating them only costs time.
            info.compress_type = zipfile.ZIP_STORED if path.suffix == ".jpg" else zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """`vtp-dice-sample OUT_DIR [--images N] [--seed S] [--size WxH] [--splits] [--zip]`."""
    parser = argparse.ArgumentParser(
        prog="vtp-dice-sample", description="Write a synthetic DICE dataset of coloured shapes."
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="160x128", help="WIDTHxHEIGHT")
    parser.add_argument("--splits", action="store_true", help="write a split into every image")
    parser.add_argument("--zip", action="store_true", help="also write OUT_DIR.zip")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    root = generate(args.out_dir, args.images, (width, height), args.seed, splits=args.splits)
    print(root)
    if args.zip:
        print(zip_dataset(root, root.with_name(root.name + ".zip")))
