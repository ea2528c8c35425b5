"""The COCO layout: `annotations/instances_{split}.json` next to `images/{split}/`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vtp_dice.format import SPLITS, Split, Task
from vtp_dice.layout import Doc, Plan, classes_file, task_items
from vtp_dice.manifest import Manifest


def coco_dict(task: Task, doc: Doc, manifest: Manifest, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A COCO document for the task's images; `names` picks images (DICE file_name -> output file_name)."""
    if task == "classification":
        raise ValueError("COCO has no classification layout")
    entries = manifest.images_by_name()
    categories = []
    for c in sorted(doc["classes"], key=lambda c: c["id"]):
        cat = {"id": c["id"], "name": c["name"], "supercategory": c.get("supercategory", "")}
        if task == "pose":
            cat.update(keypoints=c.get("keypoints", []), skeleton=c.get("skeleton", []))
        categories.append(cat)
    images, annotations = [], []
    for record in doc["images"]:
        if names is not None and record["file_name"] not in names:
            continue
        if record["file_name"] not in entries:
            raise ValueError(f"image {record['file_name']!r} not in the manifest")
        file_name = record["file_name"] if names is None else names[record["file_name"]]
        images.append(
            {"id": record["id"], "file_name": file_name, "width": record["width"], "height": record["height"]}
        )
        for ann in record["annotations"]:
            x, y, w, h = ann["bbox"]
            out = {"id": ann["id"], "image_id": record["id"], "category_id": ann["class_id"], "bbox": [x, y, w, h]}
            out.update(area=float(ann.get("area") or w * h), iscrowd=int(ann.get("iscrowd", 0)))
            if task == "segmentation":
                out["segmentation"] = ann.get("segmentation", [])
            elif task == "pose":
                out.update(
                    keypoints=ann["keypoints"],
                    num_keypoints=ann.get("num_keypoints", sum(1 for v in ann["keypoints"][2::3] if v)),
                )
            annotations.append(out)
    return {
        "info": {"description": doc.get("dataset_name", "")},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def coco_plan(task: Task, manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split]) -> Plan:
    """`annotations/instances_{split}.json` + `images/{split}/<image>` for each split that has images."""
    doc = docs[task]
    items, plan = task_items(manifest, doc, splits), Plan()
    for split in SPLITS:
        chosen = [i for i in items if i.split == split]
        if chosen:
            names = {i.record["file_name"]: i.name for i in chosen}
            plan.files[f"annotations/instances_{split}.json"] = json.dumps(
                coco_dict(task, doc, manifest, names)
            ).encode()
            plan.images.update({f"images/{split}/{i.name}": i.entry for i in chosen})
    plan.files["dice_classes.json"] = classes_file(task, doc, items)
    return plan
