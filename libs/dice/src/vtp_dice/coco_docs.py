"""COCO files of one task -> one DICE document, with the source map back to the COCO JSON pointers.

Image and annotation ids are kept unless two files use the same one (then renumbered; images stay
matched by file name); keys DICE has no field for go to `metadata.coco` / `attributes.coco`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vtp_dice.coco_masks import MaskError, is_rle, rle_polygons
from vtp_dice.format import ANNOTATION_FILES, Problem, Split, Task, pointer
from vtp_dice.import_source import SourceMap, Spot, dice_doc
from vtp_dice.schema import is_int

_IMAGE_KEYS = frozenset({"id", "file_name", "width", "height"})
_ANN_KEYS = frozenset({"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation", "keypoints"})
_ANN_RENAMES = {"class_id": "category_id", "class_name": "category_id"}


@dataclass
class Part:
    """One COCO file's contribution to one task."""

    file: str  # as shown to the user
    split: Split | None
    keypoints: bool = False  # a person_keypoints-style file
    categories: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    images: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)  # (index, image, archive entry)
    anns: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def _unique(values: list[int]) -> bool:
    return all(n == 1 for n in Counter(values).values())


def task_doc(
    task: Task, parts: list[Part], dice: dict[str, str], sources: SourceMap, problems: list[Problem]
) -> dict[str, Any]:
    dice_file = ANNOTATION_FILES[task]
    classes: dict[int, dict[str, Any]] = {}
    for part in parts:
        for i, cat in part.categories:
            mine: dict[str, Any] = {
                k: cat[k] for k in ("id", "name", "supercategory", "keypoints", "skeleton") if k in cat
            }
            if task != "pose":
                mine = {k: v for k, v in mine.items() if k not in ("keypoints", "skeleton")}
            if cat["id"] in classes and classes[cat["id"]] != mine:
                msg = f"category {cat['id']} differs from the one another file of this task defines"
                problems.append(Problem("coco_categories_differ", msg, part.file, pointer("categories", i)))
            elif cat["id"] not in classes:
                sources.add(dice_file, pointer("classes", len(classes)), Spot(part.file, pointer("categories", i)))
                classes[cat["id"]] = mine
    keep_images = _unique([img["id"] for p in parts for _, img, _ in p.images])
    keep_anns = _unique([a["id"] for p in parts for _, a in p.anns if is_int(a.get("id"))])
    records: list[dict[str, Any]] = []
    next_ann = 0
    for part in parts:
        new_id: dict[int, dict[str, Any]] = {}
        for i, img, entry in part.images:
            sources.add(dice_file, pointer("images", len(records)), Spot(part.file, pointer("images", i)))
            record: dict[str, Any] = {k: img[k] for k in ("width", "height") if k in img}
            extra = {k: v for k, v in img.items() if k not in _IMAGE_KEYS}
            record.update(id=img["id"] if keep_images else len(records) + 1, file_name=dice[entry], annotations=[])
            record.update(
                {"split": part.split} if part.split else {}, **({"metadata": {"coco": extra}} if extra else {})
            )
            new_id[img["id"]] = record
            records.append(record)
        index = {id(r): k for k, r in enumerate(records)}
        for j, ann in part.anns:
            found = new_id.get(ann["image_id"])
            if found is None:  # its image was refused above
                continue
            record = found
            next_ann += 1
            out = _annotation(task, ann, record, classes, next_ann if not keep_anns else ann.get("id"))
            at = pointer("images", index[id(record)], "annotations", len(record["annotations"]))
            sources.add(dice_file, at, Spot(part.file, pointer("annotations", j), renames=_ANN_RENAMES))
            if task == "segmentation":
                try:
                    out["segmentation"] = _polygons(ann.get("segmentation"), record)
                except MaskError as exc:
                    problems.append(Problem(exc.code, str(exc), part.file, pointer("annotations", j, "segmentation")))
                    continue
            record["annotations"].append(out)
    return dice_doc(task, sorted(classes.values(), key=lambda c: c["id"]), records, "coco")


def _annotation(
    task: Task, ann: dict[str, Any], record: dict[str, Any], classes: dict[int, dict[str, Any]], ann_id: Any
) -> dict[str, Any]:
    out = {"id": ann_id, "image_id": record["id"], "class_id": ann["category_id"]}
    out.update(class_name=classes.get(ann["category_id"], {}).get("name", ""), bbox_format="xywh")
    out.update({k: ann[k] for k in ("bbox", "area", "iscrowd") if k in ann})
    if task == "pose":
        out.update({k: ann[k] for k in ("keypoints", "num_keypoints") if k in ann})
    extra = {k: v for k, v in ann.items() if k not in _ANN_KEYS and k != "num_keypoints"}
    if extra:
        out["attributes"] = {"coco": extra}
    return out


def _polygons(segmentation: Any, record: dict[str, Any]) -> Any:
    """Polygons as given (the validator checks them), or an RLE mask traced into polygons."""
    if not is_rle(segmentation):
        return segmentation
    w, h = record.get("width"), record.get("height")
    if not (is_int(w) and is_int(h)):
        raise MaskError("coco_rle_invalid", "the image's width and height are needed to decode its mask")
    return rle_polygons(segmentation, w, h)
