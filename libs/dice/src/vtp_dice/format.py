"""Names and rules of the DICE format shared by every other module."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

FORMAT_VERSIONS = frozenset({"1.0"})

Task = Literal["classification", "detection", "segmentation", "pose"]
TASKS: tuple[Task, ...] = ("classification", "detection", "segmentation", "pose")

# DICE `task_type` values (the file's own vocabulary) -> the platform's task names.
TASK_TYPES: dict[str, Task] = {
    "classification": "classification",
    "object_detection": "detection",
    "segmentation": "segmentation",
    "pose": "pose",
}
DICE_TASK_TYPE: dict[Task, str] = {task: dice for dice, task in TASK_TYPES.items()}

# Per-task annotation file in a dataset root; `annotations.json` is the legacy single-task file.
ANNOTATION_FILES: dict[Task, str] = {
    "classification": "annotations_classification.json",
    "detection": "annotations_detection.json",
    "segmentation": "annotations_segmentation.json",
    "pose": "annotations_pose.json",
}
LEGACY_ANNOTATION_FILE = "annotations.json"
METADATA_FILE = "metadata.json"
IMAGES_DIR = "images/"

# Trainer task names (contracts' TaskType, Ultralytics' vocabulary).
TRAINER_TASK: dict[Task, str] = {
    "classification": "classify",
    "detection": "detect",
    "segmentation": "segment",
    "pose": "pose",
}

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an upload, as reported to the user.

    `file` is the path inside the archive (``annotations_detection.json``,
    ``images/a.jpg``); `pointer` a JSON pointer into that file when it applies, `line`
    the 1-based line of a text file (an imported YOLO label file).
    """

    code: str
    message: str
    file: str | None = None
    pointer: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {"code": self.code, "message": self.message}
        if self.file is not None:
            out["file"] = self.file
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.line is not None:
            out["line"] = self.line
        return out


class DatasetRejected(Exception):
    """An upload that cannot be accepted; carries every problem found (up to a cap)."""

    def __init__(self, problems: list[Problem], kind: Literal["archive", "content"] = "content") -> None:
        super().__init__(f"{len(problems)} problem(s), first: {problems[0].code}" if problems else "rejected")
        self.problems = problems
        self.kind = kind


def normalize_file_name(name: str) -> str | None:
    """An image `file_name` in canonical form (``/`` separators), or None when it is unsafe.

    Windows ``\\`` separators are normalised; ``..``, ``.``, empty segments,
    absolute paths and drive letters are refused.
    """
    path = name.replace("\\", "/")
    if not path or path.startswith("/") or _DRIVE.match(path) or "\x00" in path:
        return None
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return path


def canonical_json(doc: Any) -> bytes:
    """Byte-stable JSON: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)
