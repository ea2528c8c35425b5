"""Small YOLO and COCO dataset zips for tests and benchmarks (every task), built in memory.

Values are seeded and written with six decimals, so a YOLO label file read back from a
download compares exactly; boxes, polygons and keypoints lie inside the image.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Mapping
from typing import Any

import yaml
from PIL import Image

from vtp_dice.format import Task

NAMES = ["cat", "dog", "bird"]
KEYPOINTS = ["left_eye", "right_eye", "nose"]
SPLIT_SIZES: Mapping[str, int] = {"train": 6, "val": 3}


def jpeg(index: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small JPEG whose bytes differ per index."""
    buf = io.BytesIO()
    Image.new("RGB", size, ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256)).save(buf, "JPEG")
    return buf.getvalue()


def _f(v: float) -> str:
    return f"{v:.6f}"


def _yolo_line(task: Task, rng: random.Random) -> str:
    cls = rng.randrange(len(NAMES))
    cx, cy, w, h = (round(rng.uniform(0.3, 0.7), 6) for _ in range(4))
    w, h = round(w / 2, 6), round(h / 2, 6)
    if task == "segmentation":
        pts = [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2), (cx, cy + h / 1.5)]
        return " ".join([str(cls), *(_f(round(v, 6)) for p in pts for v in p)])
    values = [cx, cy, w, h]
    if task == "pose":
        for k in range(len(KEYPOINTS)):
            vis = (k + cls) % 3
            values += [round(rng.uniform(0.2, 0.8), 6), round(rng.uniform(0.2, 0.8), 6), vis] if vis else [0, 0, 0]
    return " ".join([str(cls), *(_f(v) for v in values)])


def yolo_zip(task: Task, sizes: Mapping[str, int] = SPLIT_SIZES, seed: int = 0, prefix: str = "img") -> bytes:
    """A YOLO zip: data.yaml and images/labels per split; classification as `{split}/{class}/`."""
    rng, buf, index = random.Random(seed), io.BytesIO(), 0
    with zipfile.ZipFile(buf, "w") as zf:
        if task != "classification":
            data: dict[str, Any] = {"path": "../datasets/sample", **{s: f"images/{s}" for s in sizes}, "names": NAMES}
            if task == "pose":
                data.update(kpt_shape=[len(KEYPOINTS), 3], flip_idx=[1, 0, 2], kpt_names={0: KEYPOINTS})
            zf.writestr("data.yaml", yaml.safe_dump(data, sort_keys=False))
        else:
            for split in sizes:
                for name in NAMES:
                    zf.writestr(f"{split}/{name}/", b"")
        for split, count in sizes.items():
            for _ in range(count):
                index += 1
                name = f"{prefix}_{index:04d}"
                if task == "classification":
                    zf.writestr(f"{split}/{NAMES[index % len(NAMES)]}/{name}.jpg", jpeg(index))
                    continue
                zf.writestr(f"images/{split}/{name}.jpg", jpeg(index))
                lines = [_yolo_line(task, rng) for _ in range(index % 3)]  # some backgrounds (empty files)
                zf.writestr(f"labels/{split}/{name}.txt", "".join(line + "\n" for line in lines))
    return buf.getvalue()


def coco_doc(task: Task, first: int, count: int, rng: random.Random, prefix: str = "img") -> dict[str, Any]:
    """One COCO file: `count` 64x48 images from index `first`, each with 0-2 objects."""
    categories: list[dict[str, Any]] = [
        {"id": i + 1, "name": n, "supercategory": "animal"} for i, n in enumerate(NAMES)
    ]
    if task == "pose":
        for c in categories:
            c.update(keypoints=KEYPOINTS, skeleton=[[1, 2], [1, 3], [2, 3]])
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for k in range(first, first + count):
        images.append({"id": k, "file_name": f"{prefix}_{k:04d}.jpg", "width": 64, "height": 48})
        for _ in range(k % 3):
            x, y = rng.randint(2, 30), rng.randint(2, 20)
            w, h = rng.randint(5, 30), rng.randint(5, 25)
            ann: dict[str, Any] = {"id": len(annotations) + 100 * k, "image_id": k, "category_id": rng.randint(1, 3)}
            ann.update(bbox=[x, y, w, h], area=float(w * h), iscrowd=0)
            if task == "segmentation":
                ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            if task == "pose":
                kpts = [[x + 1 + i, y + 2 + i, 2 if i != 1 else 0] for i in range(len(KEYPOINTS))]
                kpts[1][:2] = [0, 0]
                ann.update(keypoints=[v for p in kpts for v in p], num_keypoints=2)
            annotations.append(ann)
    return {"info": {}, "images": images, "annotations": annotations, "categories": categories}


def coco_zip(task: Task, sizes: Mapping[str, int] = SPLIT_SIZES, seed: int = 0) -> tuple[bytes, dict[str, Any]]:
    """A COCO zip (annotations/{instances|person_keypoints}_{split}.json, images/{split}/) and its documents."""
    rng, buf, docs, first = random.Random(seed), io.BytesIO(), {}, 1
    kind = "person_keypoints" if task == "pose" else "instances"
    with zipfile.ZipFile(buf, "w") as zf:
        for split, count in sizes.items():
            doc = coco_doc(task, first, count, rng)
            path = f"annotations/{kind}_{split}.json"
            zf.writestr(path, json.dumps(doc))
            docs[path] = doc
            for image in doc["images"]:
                zf.writestr(f"images/{split}/{image['file_name']}", jpeg(image["id"]))
            first += count
    return buf.getvalue(), docs
