"""Builds small DICE zips in memory, valid by default, for tests to break on purpose."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

CLASSES = [
    {"id": 0, "name": "circle", "color": "#ff0000", "supercategory": "shape"},
    {"id": 1, "name": "square", "color": "#00ff00", "supercategory": "shape"},
]


def jpeg(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30), exif_orientation: int = 0
) -> bytes:
    buf = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buf, "JPEG", exif=exif)
    else:
        image.save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class DiceZip:
    """A dataset root: annotation docs by file name, image bytes by file name, extra raw entries."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    extra: dict[str, bytes] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None

    def build(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, doc in self.docs.items():
                zf.writestr(name, json.dumps(doc))
            if self.metadata is not None:
                zf.writestr("metadata.json", json.dumps(self.metadata))
            for name, data in self.images.items():
                zf.writestr(f"images/{name}", data, compress_type=zipfile.ZIP_STORED)
            for name, data in self.extra.items():
                zf.writestr(name, data)
        return buf.getvalue()


def detection_doc(images: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format_version": "1.0",
        "dataset_id": "8f97389d-aa20-4de3-9872-d3cf8909a53c",
        "dataset_name": "shapes",
        "task_type": "object_detection",
        "created_at": "2025-11-18T22:04:10.784593+09:00",
        "last_modified_at": "2025-11-20T07:53:59.911606+09:00",
        "version": 1,
        "classes": copy.deepcopy(CLASSES),
        "images": images,
        "statistics": {"total_images": 999, "total_annotations": 999},
    }


def box(ann_id: int, image_id: int, class_id: int, bbox: list[float]) -> dict[str, Any]:
    return {
        "id": ann_id,
        "image_id": image_id,
        "class_id": class_id,
        "class_name": CLASSES[class_id]["name"],
        "bbox": bbox,
        "bbox_format": "xywh",
        "area": bbox[2] * bbox[3],
        "iscrowd": 0,
        "attributes": {},
    }


def valid_detection(n: int = 12, *, prefix: str = "img") -> DiceZip:
    """`n` 64x48 JPEGs, each with one box; background colour varies so bytes differ per image."""
    images, files = [], {}
    for i in range(n):
        name = f"{prefix}/{i:03d}.jpg"
        files[name] = jpeg(color=(i * 7 % 256, 100, 150))
        images.append(
            {
                "id": i + 1,
                "file_name": name,
                "width": 64,
                "height": 48,
                "depth": 3,
                "annotations": [box(100 + i, i + 1, i % 2, [4.0, 4.0, 20.0, 16.0])],
            }
        )
    return DiceZip({"annotations_detection.json": detection_doc(images)}, files, metadata={"source": "tests"})


def classification_doc(images: list[dict[str, Any]]) -> dict[str, Any]:
    doc = detection_doc(images)
    doc["task_type"] = "classification"
    return doc
