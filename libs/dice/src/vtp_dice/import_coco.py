"""Import COCO annotation files (boxes, polygons, RLE masks, keypoints) into DICE (docs/datasets.md).

Each COCO file gives DICE documents for what it holds: boxes (detection; for a keypoint file
the boxes belong to the pose document), masks (segmentation), keypoints (pose). Files of the
same task (one per split) merge into one document; image and annotation ids are kept unless two
files use the same id, then renumbered (images stay matched by file name). Every problem names
the COCO file and a JSON pointer into it.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vtp_dice.archive import DiceArchive
from vtp_dice.coco_files import ImageFinder, json_candidates, read_coco
from vtp_dice.coco_masks import MaskError, is_rle, rle_polygons
from vtp_dice.format import ANNOTATION_FILES, Problem, Split, Task, normalize_file_name, pointer
from vtp_dice.import_source import Imported, SourceMap, Spot, dice_doc, dice_names, image_size_problem, split_of
from vtp_dice.schema import is_int

_IMAGE_KEYS = frozenset({"id", "file_name", "width", "height"})
_ANN_KEYS = frozenset({"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation", "keypoints"})
_ANN_RENAMES = {"class_id": "category_id", "class_name": "category_id"}


@dataclass
class _Part:
    """One COCO file's contribution to one task."""

    file: str  # as shown to the user
    split: Split | None
    keypoints: bool = False  # a person_keypoints-style file
    categories: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    images: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)  # (index, image, archive entry)
    anns: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def import_coco(archive: DiceArchive) -> Imported:
    problems: list[Problem] = []
    parts: dict[Task, list[_Part]] = {}
    finder = ImageFinder(archive)
    for rel in json_candidates(archive):
        doc = read_coco(archive, rel)
        if isinstance(doc, Problem):
            problems.append(doc)
            continue
        for task, part in _read_file(archive, finder, rel, doc, problems).items():
            parts.setdefault(task, []).append(part)
    _shared_masks(parts)
    if not parts and not problems:
        problems.append(Problem("coco_no_annotation_file", "no COCO annotation file (images, annotations, categories)"))
    entries = {rel for ps in parts.values() for p in ps for _, _, rel in p.images}
    dice = dice_names({rel: (rel.rsplit("/", 1)[0] if "/" in rel else "", rel.rsplit("/", 1)[-1]) for rel in entries})
    images: dict[str, zipfile.ZipInfo] = {}
    sources = SourceMap()
    for rel, name in dice.items():
        info = archive.entries[rel]
        too_large = image_size_problem(archive.root + rel, info, archive.limits.max_image_bytes)
        if too_large is not None:
            problems.append(too_large)
        images[name], sources.images[name] = info, archive.root + rel
    docs = {task: _task_doc(task, ps, dice, sources, problems) for task, ps in parts.items()}
    return Imported("coco", images, lambda _: docs, sources, problems)


def _read_file(
    archive: DiceArchive, finder: ImageFinder, rel: str, doc: dict[str, Any], problems: list[Problem]
) -> dict[Task, _Part]:
    """Check one COCO file's references; the parts it gives each task (empty when it is unusable)."""
    shown = archive.root + rel
    base = _Part(shown, split_of(rel))

    def add(code: str, message: str, *at: str | int) -> None:
        if len(problems) <= archive.limits.max_problems:  # the rest are counted out by the cap, not kept
            problems.append(Problem(code, message, shown, pointer(*at)))

    for key in ("annotations", "categories"):
        if not isinstance(doc.get(key), list):
            add("coco_invalid", f"{key} must be a list", key)
    if problems and problems[-1].file == shown:
        return {}
    for i, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or not is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            add("coco_invalid", "a category needs an integer id and a name", "categories", i)
        else:
            base.categories.append((i, cat))
    cats = {c["id"] for _, c in base.categories}
    ids: set[int] = set()
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or not is_int(img.get("id")) or not isinstance(img.get("file_name"), str):
            add("coco_invalid", "an image needs an integer id and a file_name", "images", i)
            continue
        if img["id"] in ids:
            add("duplicate_image_id", f"image id {img['id']} is used twice", "images", i, "id")
            continue
        ids.add(img["id"])
        name = normalize_file_name(img["file_name"])
        found, why = finder.find(rel, base.split, name) if name is not None else (None, "not a safe relative path")
        if found is None:
            add("image_file_missing", why, "images", i, "file_name")
        else:
            base.images.append((i, img, found))
    for j, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            add("coco_invalid", "an annotation must be an object", "annotations", j)
        elif not is_int(ann.get("image_id")) or ann["image_id"] not in ids:
            add(
                "coco_image_id_unknown",
                f"image_id {ann.get('image_id')!r} is not an image of this file",
                "annotations",
                j,
                "image_id",
            )
        elif not is_int(ann.get("category_id")) or ann["category_id"] not in cats:
            add(
                "unknown_class_id",
                f"category_id {ann.get('category_id')!r} is not in categories",
                "annotations",
                j,
                "category_id",
            )
        else:
            base.anns.append((j, ann))
    keypoints = any(isinstance(c.get("keypoints"), list) and c["keypoints"] for _, c in base.categories)
    base.keypoints = keypoints
    masks = any(a.get("segmentation") for _, a in base.anns)
    tasks: list[Task] = ["pose" if keypoints else "detection"]
    if masks:
        tasks.append("segmentation")
    return {t: base for t in tasks}


def _shared_masks(parts: dict[Task, list[_Part]]) -> None:
    """COCO ships each person's mask in both instances_* and person_keypoints_*: when every masked
    annotation of the keypoint files is in the instances files (same id), take the masks once."""
    seg = parts.get("segmentation", [])
    instances = [p for p in seg if not p.keypoints]
    ids = {a.get("id") for p in instances for _, a in p.anns if a.get("segmentation")}
    others = [a.get("id") for p in seg if p.keypoints for _, a in p.anns if a.get("segmentation")]
    if instances and len(instances) < len(seg) and all(i in ids for i in others):
        parts["segmentation"] = instances


def _unique(values: list[int]) -> bool:
    return all(n == 1 for n in Counter(values).values())


def _task_doc(
    task: Task, parts: list[_Part], dice: dict[str, str], sources: SourceMap, problems: list[Problem]
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
