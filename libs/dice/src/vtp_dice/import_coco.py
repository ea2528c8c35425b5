"""Import COCO annotation files (boxes, polygons, RLE masks, keypoints) into DICE (docs/datasets.md).

Each COCO file gives DICE documents for what it holds: boxes (detection; for a keypoint file
the boxes belong to the pose document), masks (segmentation), keypoints (pose). Files of the
same task (one per split) merge into one document; image and annotation ids are kept unless two
files use the same id, then renumbered (images stay matched by file name). Every problem names
the COCO file and a JSON pointer into it.
"""

from __future__ import annotations

import zipfile
from typing import Any

from vtp_dice.archive import DiceArchive
from vtp_dice.coco_docs import Part, task_doc
from vtp_dice.coco_files import ImageFinder, json_candidates, read_coco
from vtp_dice.format import Problem, Task, normalize_file_name, pointer
from vtp_dice.import_source import Imported, SourceMap, dice_names, image_size_problem, split_of
from vtp_dice.schema import is_int


def import_coco(archive: DiceArchive) -> Imported:
    problems: list[Problem] = []
    parts: dict[Task, list[Part]] = {}
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
    docs = {task: task_doc(task, ps, dice, sources, problems) for task, ps in parts.items()}
    return Imported("coco", images, lambda _: docs, sources, problems)


def _read_file(
    archive: DiceArchive, finder: ImageFinder, rel: str, doc: dict[str, Any], problems: list[Problem]
) -> dict[Task, Part]:
    """Check one COCO file's references; the parts it gives each task (empty when it is unusable)."""
    shown = archive.root + rel
    base = Part(shown, split_of(rel))

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


def _shared_masks(parts: dict[Task, list[Part]]) -> None:
    """COCO ships each person's mask in both instances_* and person_keypoints_*: when every masked
    annotation of the keypoint files is in the instances files (same id), take the masks once."""
    seg = parts.get("segmentation", [])
    instances = [p for p in seg if not p.keypoints]
    ids = {a.get("id") for p in instances for _, a in p.anns if a.get("segmentation")}
    others = [a.get("id") for p in seg if p.keypoints for _, a in p.anns if a.get("segmentation")]
    if instances and len(instances) < len(seg) and all(i in ids for i in others):
        parts["segmentation"] = instances
