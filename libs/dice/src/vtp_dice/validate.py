"""Validation of DICE annotation files (docs/dice-format.md) that reports every problem, up to a cap.

Each problem names the archive file and a JSON pointer into it, so a labeler can fix all of
them in one pass instead of one per upload. The header (`parse_annotation_file`) and field
types are checked in `vtp_dice.schema`; the checks here relate fields to each other (ids,
classes, image files, geometry). `canonicalize_doc`, `referenced_images` and `image_classes`
live in `vtp_dice.doc_images`; all are importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from vtp_dice.doc_images import canonicalize_doc, image_classes, referenced_images
from vtp_dice.format import SPLITS, Problem, Task, normalize_file_name
from vtp_dice.manifest import ImageEntry
from vtp_dice.schema import (
    ANNOTATION_FIELDS,
    CLASS_FIELDS,
    IMAGE_FIELDS,
    SCHEMA_VIOLATION,
    TASK_FIELDS,
    TOP_FIELDS,
    Field,
    Path,
    Report,
    ReportFull,
    nums,
    parse_annotation_file,
)

__all__ = [
    "Field",
    "Path",
    "canonicalize_doc",
    "image_classes",
    "parse_annotation_file",
    "referenced_images",
    "validate_annotation_doc",
]


def validate_annotation_doc(
    path: str,
    task: Task,
    doc: dict[str, Any],
    images: Mapping[str, ImageEntry],
    broken: AbstractSet[str],
    max_problems: int = 200,
) -> list[Problem]:
    """Every problem of one parsed document, checked against the archive's decoded images.

    `images` maps normalized file names (relative to images/) to decoded facts; `broken` holds
    present but undecodable files, reported elsewhere and so not "missing" here.
    """
    rep = Report(path, max_problems)
    try:
        _check_doc(rep, task, doc, images, broken)
    except ReportFull:
        msg = f"more than {max_problems} problems; only the first {max_problems} are listed"
        rep.problems.append(Problem("too_many_problems", msg, path))
    return rep.problems


def _check_doc(
    rep: Report, task: Task, doc: dict[str, Any], found: Mapping[str, ImageEntry], broken: AbstractSet[str]
) -> None:
    rep.fields(doc, (), TOP_FIELDS)
    classes: dict[int, dict[str, Any]] | None = None  # None: unusable, so class references go unchecked
    if not isinstance(doc.get("classes"), list):
        rep.add(SCHEMA_VIOLATION, "classes must be a list", "classes")
    else:
        classes, names = {}, set()
        for i, c in enumerate(doc["classes"]):
            if not isinstance(c, dict):
                rep.add(SCHEMA_VIOLATION, "a class must be an object", "classes", i)
                continue
            bad = rep.fields(c, ("classes", i), CLASS_FIELDS)
            if "id" not in bad and c["id"] in classes:
                rep.add("duplicate_class_id", f"class id {c['id']} is used twice", "classes", i, "id")
            elif "id" not in bad:
                classes[c["id"]] = c
            if "name" not in bad and c["name"] in names:
                rep.add("duplicate_class_name", f"class name {c['name']!r} is used twice", "classes", i, "name")
            if "name" not in bad:
                names.add(c["name"])
    if not isinstance(doc.get("images"), list):
        rep.add(SCHEMA_VIOLATION, "images must be a list", "images")
        return
    ids: set[int] = set()
    seen: set[str] = set()
    for i, img in enumerate(doc["images"]):
        at: Path = ("images", i)
        if not isinstance(img, dict):
            rep.add(SCHEMA_VIOLATION, "an image must be an object", *at)
            continue
        bad = rep.fields(img, at, IMAGE_FIELDS)
        if "id" not in bad and img["id"] in ids:
            rep.add("duplicate_image_id", f"image id {img['id']} is used twice", *at, "id")
        if "id" not in bad:
            ids.add(img["id"])
        name = None if "file_name" in bad else img["file_name"]
        entry, norm = None, None if name is None else normalize_file_name(name)
        if name is None:
            pass  # already reported as a schema violation
        elif norm is None:
            rep.add("invalid_file_name", f"file_name {name!r} is not a safe path under images/", *at, "file_name")
        elif norm in seen:
            rep.add("duplicate_file_name", f"file_name {norm!r} is listed twice", *at, "file_name")
        else:
            seen.add(norm)
            entry = found.get(norm)
            if entry is None and norm not in broken:
                rep.add("image_file_missing", f"images/{norm} is not in the archive", *at, "file_name")
        # Geometry is in the labeler's frame: the declared size; a wrong one is reported just below.
        size = (img["width"], img["height"]) if not bad & {"width", "height"} else None
        if size is not None and entry is not None and size != (entry.width, entry.height):
            msg = f"declared {size[0]}x{size[1]}, the image decodes to {entry.width}x{entry.height} (EXIF applied)"
            rep.add("image_size_mismatch", msg, *at, "width" if size[0] != entry.width else "height")
        if img.get("split") is not None and img["split"] not in SPLITS:
            rep.add("invalid_split", f"split {img['split']!r} is not one of {', '.join(SPLITS)}", *at, "split")
        image_id = None if "id" in bad else img["id"]
        for j, ann in enumerate(img["annotations"] if "annotations" not in bad else []):
            _check_annotation(rep, task, (*at, "annotations", j), ann, image_id, classes, size)


def _check_annotation(
    rep: Report, task: Task, at: Path, ann: Any, image_id: int | None, classes: dict[int, Any] | None, size: Any
) -> None:
    if not isinstance(ann, dict):
        rep.add(SCHEMA_VIOLATION, "an annotation must be an object", *at)
        return
    bad = rep.fields(ann, at, ANNOTATION_FIELDS) | rep.fields(ann, at, TASK_FIELDS[task])
    if image_id is not None and "image_id" not in bad and ann["image_id"] != image_id:
        msg = f"image_id {ann['image_id']}, the image's id is {image_id}"
        rep.add("annotation_image_mismatch", msg, *at, "image_id")
    cls = classes.get(ann["class_id"]) if classes is not None and "class_id" not in bad else None
    if classes is not None and "class_id" not in bad and cls is None:
        rep.add("unknown_class_id", f"class_id {ann['class_id']} is not in classes", *at, "class_id")
    if cls is not None and "class_name" not in bad and ann["class_name"] != cls.get("name"):
        msg = f"class_name {ann['class_name']!r}, class {ann['class_id']} is named {cls.get('name')!r}"
        rep.add("class_name_mismatch", msg, *at, "class_name")
    if "bbox" in ann and "bbox" not in bad and task != "classification":
        x, y, w, h = ann["bbox"]
        if w <= 0 or h <= 0:
            rep.add("bbox_non_positive", f"bbox width and height must be positive, got {w} x {h}", *at, "bbox")
        elif size is not None:
            # Tools round to sub-pixel precision: allow 1 px or 0.5 % of the side, whichever is larger.
            tx, ty = max(1.0, 0.005 * size[0]), max(1.0, 0.005 * size[1])
            if x < -tx or y < -ty or x + w > size[0] + tx or y + h > size[1] + ty:
                msg = f"bbox {ann['bbox']} is outside the {size[0]}x{size[1]} image"
                rep.add("bbox_out_of_bounds", msg, *at, "bbox")
    if task == "segmentation" and "segmentation" not in bad:
        for k, poly in enumerate(ann["segmentation"]):
            if not nums(poly) or len(poly) % 2:
                rep.add(SCHEMA_VIOLATION, "a polygon must be a flat list [x1, y1, x2, y2, ...]", *at, "segmentation", k)
            elif len(poly) < 6:
                msg = f"a polygon needs 3 points, has {len(poly) // 2}"
                rep.add("polygon_too_few_points", msg, *at, "segmentation", k)
    if task == "pose" and "keypoints" not in bad:
        kps = ann["keypoints"]
        for k in range(2, len(kps), 3):
            if kps[k] not in (0, 1, 2):
                rep.add("keypoint_visibility_invalid", f"visibility {kps[k]!r} is not 0, 1 or 2", *at, "keypoints", k)
        names = cls.get("keypoints") if cls is not None else None
        if isinstance(names, list) and len(kps) // 3 != len(names):
            rep.add(SCHEMA_VIOLATION, f"{len(kps) // 3} keypoints, the class defines {len(names)}", *at, "keypoints")
