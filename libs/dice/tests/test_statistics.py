"""Statistics are recomputed from the data, deterministic, and ignore the file's own `statistics`."""

from __future__ import annotations

import json
from typing import Any

from vtp_dice.format import Task, canonical_json
from vtp_dice.manifest import ImageEntry
from vtp_dice.statistics import compute_statistics


def entry(name: str, width: int, height: int, size: int = 1000) -> ImageEntry:
    return ImageEntry(name, "0" * 64, size, width, height, "JPEG")


def ann(class_id: int, class_name: str) -> dict[str, Any]:
    return {"id": 0, "image_id": 0, "class_id": class_id, "class_name": class_name, "bbox": [0, 0, 1, 1]}


def image(file_name: str, *anns: dict[str, Any]) -> dict[str, Any]:
    return {"id": 0, "file_name": file_name, "width": 10, "height": 10, "annotations": list(anns)}


DOCS: dict[Task, dict[str, Any]] = {
    "detection": {
        "task_type": "object_detection",
        # Listed out of id order: the result is ordered by id.
        "classes": [{"id": 2, "name": "scratch"}, {"id": 0, "name": "dent"}, {"id": 1, "name": "unused"}],
        "images": [
            image("a.jpg", ann(0, "dent"), ann(0, "dent"), ann(2, "scratch")),
            image("b.jpg", ann(2, "scratch")),
            image("c.jpg"),
        ],
        "statistics": {"total_images": 1000, "total_annotations": 12345},  # lies; must be ignored
    },
    "classification": {
        "task_type": "classification",
        "classes": [{"id": 0, "name": "ok"}, {"id": 1, "name": "ng"}],
        "images": [image("a.jpg", ann(1, "ng")), image("b.jpg", ann(0, "ok")), image("d.jpg", ann(1, "ng"))],
    },
}
IMAGES = [entry("a.jpg", 640, 480, 100), entry("b.jpg", 800, 600, 200), entry("c.jpg", 320, 240, 300)]
IMAGES.append(entry("d.jpg", 1024, 200, 400))
SPLITS = {"a.jpg": "train", "b.jpg": "train", "c.jpg": "val", "d.jpg": "test", "not-an-image.jpg": "val"}


def test_statistics_of_a_two_task_dataset() -> None:
    assert compute_statistics(DOCS, IMAGES, SPLITS) == {
        "image_count": 4,
        "size_bytes": 1000,
        "tasks": {
            "classification": {
                "classes": [
                    {"id": 0, "name": "ok", "annotation_count": 1},
                    {"id": 1, "name": "ng", "annotation_count": 2},
                ],
                "annotation_count": 3,
                "image_count": 3,
                "labeled_image_count": 3,
            },
            "detection": {
                "classes": [
                    {"id": 0, "name": "dent", "annotation_count": 2},
                    {"id": 1, "name": "unused", "annotation_count": 0},
                    {"id": 2, "name": "scratch", "annotation_count": 2},
                ],
                "annotation_count": 4,
                "image_count": 3,
                "labeled_image_count": 2,
            },
        },
        "class_distribution": {
            "classification": {"ok": 1, "ng": 2},
            "detection": {"dent": 2, "unused": 0, "scratch": 2},
        },
        "split_distribution": {"train": 2, "val": 1, "test": 1},
        "annotations_per_image": {
            "classification": {"min": 1, "max": 1, "mean": 1.0},
            "detection": {"min": 0, "max": 3, "mean": 1.3333},
        },
        "image_size": {"min_width": 320, "max_width": 1024, "min_height": 200, "max_height": 600},
    }


def test_key_order_is_deterministic() -> None:
    stats = compute_statistics(DOCS, IMAGES, SPLITS)
    assert list(stats) == [
        "image_count",
        "size_bytes",
        "tasks",
        "class_distribution",
        "split_distribution",
        "annotations_per_image",
        "image_size",
    ]
    assert list(stats["tasks"]) == ["classification", "detection"]  # TASKS order, not the input's
    reordered = {task: DOCS[task] for task in reversed(list(DOCS))}
    assert json.dumps(compute_statistics(reordered, IMAGES, SPLITS)) == json.dumps(stats)
    canonical_json(stats)  # plain JSON, no NaN


def test_empty_dataset() -> None:
    stats = compute_statistics({"detection": {"classes": [], "images": []}}, [], {})
    assert stats["image_count"] == 0 and stats["size_bytes"] == 0
    assert stats["annotations_per_image"] == {"detection": {"min": 0, "max": 0, "mean": 0.0}}
    assert stats["split_distribution"] == {"train": 0, "val": 0, "test": 0}
    assert stats["image_size"] == {"min_width": 0, "max_width": 0, "min_height": 0, "max_height": 0}


def test_windows_names_and_duplicates_count_once() -> None:
    doc = {"classes": [{"id": 0, "name": "x"}], "images": [image("s\\a.jpg", ann(0, "x")), image("s/a.jpg")]}
    tasks = compute_statistics({"detection": doc}, [], {})["tasks"]
    assert tasks["detection"]["image_count"] == 1
    assert tasks["detection"]["annotation_count"] == 1
