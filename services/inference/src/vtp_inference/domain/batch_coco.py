"""COCO detection results of a detect batch, built from its JSON Lines rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def coco_document(
    rows: Iterable[dict[str, Any]], names: dict[str, str], image_ids: list[int] | None = None
) -> dict[str, Any]:
    """`images`, `categories` (the model's classes) and `annotations` with `score` (COCO results).

    Image ids are the snapshot's own (`image_ids`, in the rows' order) for a snapshot batch, else
    the rows' 1-based indexes; category ids are the model's class ids (0-based, as
    Ultralytics writes them). Rows of refused images stay out of `images`.
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for row in rows:
        if "error" in row:
            continue
        index = int(row["index"])
        image_id = image_ids[index] if image_ids else index + 1
        images.append({"id": image_id, "file_name": row["file"], "width": row["width"], "height": row["height"]})
        for det in row.get("detections", []):
            x1, y1, x2, y2 = det["xyxy"]
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(det["class_id"]),
                    "bbox": [round(x1, 3), round(y1, 3), round(w, 3), round(h, 3)],
                    "area": round(w * h, 3),
                    "score": round(float(det["confidence"]), 5),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": int(k), "name": v} for k, v in sorted(names.items(), key=lambda kv: int(kv[0]))]
    return {"images": images, "annotations": annotations, "categories": categories}
