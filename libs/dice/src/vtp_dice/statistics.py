"""Dataset statistics recomputed from the data (docs/dice-format.md: a file's own `statistics` is never trusted).

The result is plain JSON with a fixed key order (tasks in TASKS order, classes by id, splits in
SPLITS order), so two computations over the same data serialise to the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vtp_dice.format import SPLITS, TASKS, Task, normalize_file_name
from vtp_dice.manifest import ImageEntry


def _listed(doc: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects of a top-level list; tolerant so statistics never crash on odd input."""
    items = doc.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _task_stats(doc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, int], dict[str, Any]]:
    """(task entry, class distribution, annotations-per-image summary) of one annotation document."""
    classes = sorted(
        (c for c in _listed(doc, "classes") if isinstance(c.get("id"), int) and isinstance(c.get("name"), str)),
        key=lambda c: int(c["id"]),
    )
    counts: dict[int, int] = {int(c["id"]): 0 for c in classes}
    # Annotations whose class is unknown (validation rejects them) still count, under their own name.
    stray: dict[str, int] = {}
    per_image: list[int] = []
    seen: set[str] = set()
    for img in _listed(doc, "images"):
        name = img.get("file_name")
        norm = normalize_file_name(name) if isinstance(name, str) else None
        if norm is None or norm in seen:
            continue  # invalid or duplicate entries are rejected by validation; count each image once
        seen.add(norm)
        anns = _listed(img, "annotations")
        per_image.append(len(anns))
        for ann in anns:
            cid = ann.get("class_id")
            if isinstance(cid, int) and cid in counts:
                counts[cid] += 1
            else:
                label = str(ann.get("class_name", cid))
                stray[label] = stray.get(label, 0) + 1
    class_rows = [
        {"id": int(c["id"]), "name": str(c["name"]), "annotation_count": counts[int(c["id"])]} for c in classes
    ]
    distribution: dict[str, int] = {}
    for c in classes:
        distribution[str(c["name"])] = distribution.get(str(c["name"]), 0) + counts[int(c["id"])]
    for label in sorted(stray):
        distribution[label] = distribution.get(label, 0) + stray[label]
    total = sum(per_image)
    entry = {
        "classes": class_rows,
        "annotation_count": total,
        "image_count": len(per_image),
        "labeled_image_count": sum(1 for n in per_image if n > 0),
    }
    spread = {
        "min": min(per_image, default=0),
        "max": max(per_image, default=0),
        # Rounded so the stored JSON does not carry float noise like 1.3333333333333333.
        "mean": round(total / len(per_image), 4) if per_image else 0.0,
    }
    return entry, distribution, spread


def compute_statistics(
    docs: Mapping[Task, dict[str, Any]], images: Sequence[ImageEntry], splits: Mapping[str, str]
) -> dict[str, Any]:
    """Statistics of a dataset from its annotation documents, decoded images and split assignment.

    `split_distribution` counts the images of `images` by their split in `splits` (unassigned ones
    are not counted). `image_size` is all zeros for a dataset without images.
    """
    tasks: dict[str, Any] = {}
    class_distribution: dict[str, Any] = {}
    annotations_per_image: dict[str, Any] = {}
    for task in TASKS:
        if task in docs:
            tasks[task], class_distribution[task], annotations_per_image[task] = _task_stats(docs[task])
    split_distribution = dict.fromkeys(SPLITS, 0)
    for entry in images:
        split = splits.get(entry.file_name)
        if split in split_distribution:
            split_distribution[split] += 1
    widths, heights = [i.width for i in images], [i.height for i in images]
    return {
        "image_count": len(images),
        "size_bytes": sum(i.size for i in images),
        "tasks": tasks,
        "class_distribution": class_distribution,
        "split_distribution": split_distribution,
        "annotations_per_image": annotations_per_image,
        "image_size": {
            "min_width": min(widths, default=0),
            "max_width": max(widths, default=0),
            "min_height": min(heights, default=0),
            "max_height": max(heights, default=0),
        },
    }
