"""The DICE annotation schema: a file's header and one table row per field, checked by a `Report`.

`parse_annotation_file` decodes a file and checks its header (task_type, format_version).
Each table row says whether a field is required, how to check its value and what it must
be; a `Report` collects the problems (file, JSON pointer) up to a cap. The rules that relate
fields to each other are in `vtp_dice.validate`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeGuard

from vtp_dice.format import ANNOTATION_FILES, DICE_TASK_TYPE, FORMAT_VERSIONS, TASK_TYPES, Problem, Task, pointer

SCHEMA_VIOLATION = "schema_violation"
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
Path = tuple[str | int, ...]
_FILE_TASK: dict[str, Task] = {name: task for task, name in ANNOTATION_FILES.items()}


def is_int(v: object) -> TypeGuard[int]:
    """A JSON integer (not a boolean)."""
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true must not pass as 1


def is_num(v: object) -> TypeGuard[float]:
    """A finite JSON number (not a boolean)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def nums(v: object, n: int | None = None) -> bool:
    """A list of numbers (`n` of them, when given)."""
    return isinstance(v, list) and (n is None or len(v) == n) and all(is_num(x) for x in v)


def _pairs(v: object) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(is_int(k) and k >= 1 for k in v)


def _name(v: object) -> bool:
    return isinstance(v, str) and "\x00" not in v


# (key, required, check, what it must be): the schema as data, one line per field.
Field = tuple[str, bool, Callable[[Any], bool], str]
TOP_FIELDS: tuple[Field, ...] = (
    *((key, False, lambda v: isinstance(v, str), "a string") for key in ("dataset_id", "dataset_name", "created_at")),
    ("last_modified_at", False, lambda v: isinstance(v, str), "a string"),
    ("version", False, is_int, "an integer"),
    ("statistics", False, lambda v: isinstance(v, dict), "an object"),
)
CLASS_FIELDS: tuple[Field, ...] = (
    ("id", True, is_int, "an integer"),
    # Class names are stored and searched by the platform (PostgreSQL holds no U+0000).
    ("name", True, lambda v: _name(v) and v != "", "a non-empty string without NUL"),
    ("color", False, lambda v: isinstance(v, str) and bool(_COLOR.match(v)), 'a color "#rrggbb"'),
    ("supercategory", False, lambda v: isinstance(v, str), "a string"),
    ("keypoints", False, lambda v: isinstance(v, list) and all(_name(k) for k in v), "a list of names without NUL"),
    ("skeleton", False, lambda v: isinstance(v, list) and all(_pairs(e) for e in v), "pairs of 1-based indices"),
)
_POSITIVE = "a positive integer"
IMAGE_FIELDS: tuple[Field, ...] = (
    ("id", True, is_int, "an integer"),
    ("file_name", True, lambda v: isinstance(v, str), "a string"),
    ("width", True, lambda v: is_int(v) and v > 0, _POSITIVE),
    ("height", True, lambda v: is_int(v) and v > 0, _POSITIVE),
    ("depth", False, lambda v: is_int(v) and v > 0, _POSITIVE),
    ("metadata", False, lambda v: isinstance(v, dict), "an object"),
    ("annotations", True, lambda v: isinstance(v, list), "a list (empty for a background image)"),
)
ANNOTATION_FIELDS: tuple[Field, ...] = (
    *((key, True, is_int, "an integer") for key in ("id", "image_id", "class_id")),
    ("class_name", True, lambda v: isinstance(v, str), "a string"),
    ("attributes", False, lambda v: isinstance(v, dict), "an object"),
)
_GEOMETRY: tuple[Field, ...] = (  # every task but classification, COCO style
    ("bbox", True, lambda v: nums(v, 4), "[x, y, w, h], 4 numbers"),
    ("bbox_format", False, lambda v: v == "xywh", '"xywh"'),
    ("area", False, is_num, "a number"),
    ("iscrowd", False, lambda v: v in (0, 1) and not isinstance(v, bool), "0 or 1"),
)
TASK_FIELDS: dict[Task, tuple[Field, ...]] = {
    "classification": (),
    "detection": _GEOMETRY,
    "segmentation": (*_GEOMETRY, ("segmentation", True, lambda v: isinstance(v, list) and v != [], "polygons")),
    "pose": (
        *_GEOMETRY,
        ("keypoints", True, lambda v: nums(v) and len(v) % 3 == 0 and v != [], "[x1, y1, v1, ...] numbers"),
        ("num_keypoints", False, is_int, "an integer"),
    ),
}


class ReportFull(Exception):
    """Raised once the cap is reached: stops the walk early on hopeless documents."""


class Report:
    """The problems of one file, in order; `add` raises `ReportFull` once `cap` are listed."""

    def __init__(self, file: str, cap: int) -> None:
        self.file, self.cap, self.problems = file, cap, list[Problem]()

    def add(self, code: str, message: str, *at: str | int) -> None:
        if len(self.problems) >= self.cap:
            raise ReportFull
        self.problems.append(Problem(code, message, self.file, pointer(*at)))

    def fields(self, obj: dict[str, Any], at: Path, spec: tuple[Field, ...]) -> set[str]:
        """Check `obj` against a field table; return the keys that are wrong (their other checks are skipped)."""
        bad = {
            key for key, required, ok, _ in spec if (key in obj and not ok(obj[key])) or (required and key not in obj)
        }
        for key, _, _, what in spec:
            if key in bad:
                msg = f"{key} must be {what}" if key in obj else f"{key} is required ({what})"
                self.add(SCHEMA_VIOLATION, msg, *at, key)
        return bad


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
