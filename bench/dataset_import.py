"""Import of a YOLO detect zip against the same images and boxes uploaded as DICE, in this process.

Both zips go through the datasets service's ingest step (`inspect_upload`: archive checks, image
probing, conversion for YOLO, DICE validation), which is where the two paths differ; storing the
blobs afterwards is the same code for both. Runs alternate (DICE, YOLO, DICE, YOLO, ...) so load
from other processes hits both alike; the best run of each is compared.

Prints images/s and MB/s for each, and the ratio YOLO / DICE (goal: >= 0.9).

Run: python bench/dataset_import.py [--images 2000] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
import zipfile
from pathlib import Path

import yaml
from PIL import Image

from vtp_datasets.service_layer.ingest import BaseVersion, inspect_upload
from vtp_dice.archive import ArchiveLimits

W, H = 640, 480
NAMES = ["a", "b", "c"]


def build(root: Path, count: int, seed: int = 0) -> tuple[Path, Path]:
    """The same JPEGs and boxes as a DICE zip and as a YOLO zip (80 % train, 20 % val)."""
    rng = random.Random(seed)
    noise = Image.effect_noise((W, H * 8), 30)
    gradient = Image.linear_gradient("L").resize((W, H))
    dice, yolo = root / "dice.zip", root / "yolo.zip"
    images = []
    with zipfile.ZipFile(dice, "w", zipfile.ZIP_STORED) as dz, zipfile.ZipFile(yolo, "w", zipfile.ZIP_STORED) as yz:
        for i in range(count):
            top = rng.randrange(0, H * 7)
            out = io.BytesIO()
            Image.merge("RGB", (gradient.rotate(rng.randrange(360)), gradient, noise.crop((0, top, W, top + H)))).save(
                out, "JPEG", quality=85
            )
            split, name = ("train" if i % 5 else "val"), f"{i:06d}.jpg"
            boxes = [
                (rng.randrange(3), *(round(rng.uniform(0.3, 0.7), 6) for _ in range(2)), 0.2, 0.25) for _ in range(3)
            ]
            dz.writestr(f"images/{name}", out.getvalue())
            yz.writestr(f"images/{split}/{name}", out.getvalue())
            yz.writestr(f"labels/{split}/{i:06d}.txt", "".join(f"{c} {x} {y} {w} {h}\n" for c, x, y, w, h in boxes))
            anns = [
                {
                    "id": i * 3 + k,
                    "image_id": i + 1,
                    "class_id": c,
                    "class_name": NAMES[c],
                    "bbox_format": "xywh",
                    "bbox": [(x - w / 2) * W, (y - h / 2) * H, w * W, h * H],
                    "area": w * W * h * H,
                    "iscrowd": 0,
                }
                for k, (c, x, y, w, h) in enumerate(boxes)
            ]
            images.append(
                {"id": i + 1, "file_name": name, "width": W, "height": H, "split": split, "annotations": anns}
            )
        doc = {
            "format_version": "1.0",
            "task_type": "object_detection",
            "images": images,
            "classes": [{"id": c, "name": n} for c, n in enumerate(NAMES)],
        }
        dz.writestr("annotations_detection.json", json.dumps(doc))
        yz.writestr("data.yaml", yaml.safe_dump({"train": "images/train", "val": "images/val", "names": NAMES}))
    return dice, yolo


def ingest(path: Path, workers: int) -> float:
    start = time.perf_counter()
    inspected = inspect_upload(path, ArchiveLimits(), BaseVersion(), workers)
    elapsed = time.perf_counter() - start
    inspected.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dice, yolo = build(Path(tmp), args.images)
        best = {"dice": float("inf"), "yolo": float("inf")}
        for _ in range(args.rounds):
            for kind, path in (("dice", dice), ("yolo", yolo)):
                best[kind] = min(best[kind], ingest(path, args.workers))
        for kind, path in (("dice", dice), ("yolo", yolo)):
            mb = path.stat().st_size / 1e6
            print(
                f"{kind:5s} {args.images} images, {mb:.1f} MB: best {best[kind]:.2f} s = "
                f"{args.images / best[kind]:.0f} images/s, {mb / best[kind]:.1f} MB/s"
            )
        print(f"throughput ratio yolo / dice: {best['dice'] / best['yolo']:.3f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
