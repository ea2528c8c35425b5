"""What an importer (YOLO, COCO) hands the DICE pipeline, and where every part of it came from.

An importer reads the original files once and returns an `Imported`: the image entries under
DICE file names, a `build` step that makes the DICE documents once the images' decoded sizes
are known (YOLO coordinates are normalised), and a `SourceMap`. The DICE validator then checks
those documents like an upload's; the source map turns each of its problems back into the
original file and line (a YOLO label file) or JSON pointer (a COCO file).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from vtp_dice.format import DICE_TASK_TYPE, FORMAT_VERSIONS, Problem, Split, Task
from vtp_dice.manifest import ImageEntry

# Suffixes an importer takes for images (Ultralytics' list, plus GIF); the bytes are sniffed anyway.
IMAGE_SUFFIXES = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".mpo", ".gif"})
_SPLIT_WORD = re.compile(r"(?<![a-z])(train|validation|valid|val|test)(?![a-z])")
_SPLIT_OF: dict[str, Split] = {"train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}
Docs = dict[Task, dict[str, Any]]


@dataclass(frozen=True)
class Spot:
    """A place in an original file: a JSON pointer (COCO, data.yaml keys) or a line (YOLO label file)."""

    file: str
    pointer: str | None = None
    line: int | None = None
    renames: Mapping[str, str] = field(default_factory=dict)  # DICE field -> original field, under `pointer`


@dataclass
class SourceMap:
    """DICE places -> original places: images by file_name, document parts by (file, pointer prefix)."""

    images: dict[str, str] = field(default_factory=dict)
    spots: dict[tuple[str, str], Spot] = field(default_factory=dict)
    dice_files: set[str] = field(default_factory=set)  # the DICE files the import made up (not in the upload)

    def add(self, dice_file: str, dice_pointer: str, spot: Spot) -> None:
        self.spots[(dice_file, dice_pointer)] = spot
        self.dice_files.add(dice_file)

    def locate(self, problem: Problem) -> Problem:
        """The same problem, naming the original file and place (unchanged when nothing maps it)."""
        file = problem.file
        if file is not None and file.startswith("images/") and file[len("images/") :] in self.images:
            return replace(problem, file=self.images[file[len("images/") :]])
        virtual = file in self.dice_files  # never name a file the user did not upload
        if file is None or problem.pointer is None:
            return replace(problem, file=None) if virtual else problem
        parts = problem.pointer.split("/")[1:] if problem.pointer else []
        for n in range(len(parts), -1, -1):  # the longest registered prefix wins
            spot = self.spots.get((file, "/" + "/".join(parts[:n]) if n else ""))
            if spot is None:
                continue
            if spot.pointer is None:
                return replace(problem, file=spot.file, pointer=None, line=spot.line)
            tail = [spot.renames.get(p, p) if i == 0 else p for i, p in enumerate(parts[n:])]
            return replace(problem, file=spot.file, pointer=spot.pointer + "".join("/" + t for t in tail))
        return replace(problem, file=None, pointer=None) if virtual else problem


@dataclass
class Imported:
    """An upload in another format, converted: images under DICE names, documents built after probing."""

    fmt: str
    images: dict[str, zipfile.ZipInfo]  # DICE file_name -> the original entry
    build: Callable[[Mapping[str, ImageEntry]], Docs]  # decoded images -> DICE documents per task
    sources: SourceMap
    problems: list[Problem]


def split_of(path: str) -> Split | None:
    """The split a path names (`train`, `val`/`valid`/`validation`, `test`; `val2017` counts), last segment first."""
    for part in reversed(path.lower().split("/")):
        found = _SPLIT_WORD.search(part)
        if found:
            return _SPLIT_OF[found.group(1)]
    return None


def is_image(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES


def dice_names(found: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Original path -> DICE file_name, from (prefix, name inside its folder) per image.

    The name inside its folder is kept when it is unique, so a download gives the original names
    back; when two folders hold the same name, every image keeps its prefix (split, class) too.
    """
    short = [name for _, name in found.values()]
    if len(set(short)) == len(short):
        return {path: name for path, (_, name) in found.items()}
    return {path: f"{prefix}/{name}" if prefix else name for path, (prefix, name) in found.items()}


def dice_doc(task: Task, classes: list[dict[str, Any]], images: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """A DICE annotation document (docs/dice-format.md) for imported classes and images."""
    return {
        "format_version": sorted(FORMAT_VERSIONS)[-1],
        "task_type": DICE_TASK_TYPE[task],
        "dataset_name": source,
        "classes": classes,
        "images": images,
    }


def image_size_problem(path: str, info: zipfile.ZipInfo, max_bytes: int) -> Problem | None:
    if info.file_size > max_bytes:
        return Problem("image_too_large", f"{info.file_size} bytes, at most {max_bytes}", path)
    return None
