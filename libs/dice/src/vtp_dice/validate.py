"""Validation of DICE annotation files (docs/dice-format.md) that reports every problem, up to a cap.

Each problem names the archive file and a JSON pointer into it, so a labeler can fix all of
them in one pass instead of one per upload. Field types are checked from the tables in
`vtp_dice.schema`; the checks here relate fields to each other (ids, classes, image files,
geometry). `canonicalize_doc`, `referenced_images` and `image_classes` live in `vtp_dice.doc_images`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any, NoReturn

from vtp_dice.doc_images import canonicalize_doc, image_classes, referenced_images
from vtp_dice.format import (
    ANNOTATION_FILES,
    DICE_TASK_TYPE,
    FORMAT_VERSIONS,
    SPLITS,
    TASK_TYPES,
    Problem,
    Task,
    normalize_file_name,
)
from vtp_dice.manifest import ImageEntry
from vtp_dice.schema import (
    ANNOTATION_FIELDS,
    CLASS_FIELDS,
    IMAGE_FIELDS,
    SCHEMA_VIOLATION,
    TASK_FIELDS,
    TOP_FIELDS,
    Path,
    Report,
    ReportFull,
    nums,
)

__all__ = [
    "canonicalize_doc",
    "image_classes",
    "parse_annotation_file",
    "referenced_images",
    "validate_annotation_doc",
]

_FILE_TASK: dict[str, Task] = {name: task for task, name in ANNOTATION_FILES.items()}


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")  # NaN/Infinity would break canonical_json later


def parse_annotation_file(path: str, raw: bytes) -> tuple[Task | None, dict[str, Any] | None, list[Problem]]:
    """Decode one annotation file: its task (from `task_type`, None when unknown), the document, header problems."""
    try:  # utf-8-sig: Windows tools often write a BOM, which is harmless
        doc = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        msg = f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        return None, None, [Problem("invalid_json", msg, path)]
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        return None, None, [Problem("invalid_json", f"not valid UTF-8 JSON: {e}", path)]
    if not isinstance(doc, dict):
        return None, None, [Problem(SCHEMA_VIOLATION, "an annotation file must be a JSON object", path, "")]
    problems: list[Problem] = []
    kind = doc.get("task_type")
    task = TASK_TYPES.get(kind) if isinstance(kind, str) else None
    if task is None:
        msg = f"task_type {kind!r} is not one of {', '.join(TASK_TYPES)}"
        problems.append(Problem("unknown_task_type", msg, path, "/task_type"))
    if "format_version" not in doc:
        problems.append(Problem("format_version_missing", "format_version is required", path, "/format_version"))
    elif doc["format_version"] not in FORMAT_VERSIONS:
        msg = f"format_version {doc['format_version']!r} is not supported ({', '.join(sorted(FORMAT_VERSIONS))})"
        problems.append(Problem("format_version_unsupported", msg, path, "/format_version"))
    # A per-task file name fixes the task; the legacy annotations.json leaves it to task_type.
    named = _FILE_TASK.get(path.rsplit("/", 1)[-1])
    if task is not None and named is not None and named != task:
        msg = f"this file must hold task_type {DICE_TASK_TYPE[named]!r}, found {kind!r}"
        problems.append(Problem("task_type_mismatch", msg, path, "/task_type"))
    return task, doc, problems  # on a mismatch, the task the content declares (it is rejected anyway)


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
