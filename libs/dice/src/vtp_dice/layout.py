"""What every trainer layout shares: the plan (a layout as data), the task's images, disk output.

A plan holds small files as bytes, images as manifest entries and empty directories; it is
written to disk here (images hard-linked from a local blob cache) or streamed as a zip
(`vtp_dice.zipstream`). Class ids become contiguous indices 0..n-1 in ascending DICE id
order; every layout carries the mapping in `dice_classes.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from vtp_dice.format import SPLITS, Split, Task
from vtp_dice.manifest import ImageEntry, Manifest, blob_key

BlobPath = Callable[[str], Path]
OpenBlob = Callable[[str], BinaryIO]
Doc = Mapping[str, Any]

# Suffixes Ultralytics (and most loaders) recognise as images; other names get one from the sniffed format.
_IMAGE_SUFFIXES = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".mpo"})
_FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif", "MPO": ".jpg"}


@dataclass
class Plan:
    """A layout as data: small files (relative path -> bytes), images (relative path -> entry), empty dirs."""

    files: dict[str, bytes] = field(default_factory=dict)
    images: dict[str, ImageEntry] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    """One image of the task, with its split and its flattened output name."""

    split: Split
    name: str
    record: Doc
    entry: ImageEntry


def local_blobs(root: Path) -> BlobPath:
    """`blob_path` for a directory holding blobs at their object-store keys (blobs/sha256/xx/<sha>)."""
    return lambda sha: root / blob_key(sha)


def class_index(doc: Doc) -> dict[int, int]:
    """DICE class id -> contiguous index, in ascending id order (what YOLO label files need)."""
    return {cid: i for i, cid in enumerate(sorted(c["id"] for c in doc["classes"]))}


def flat_names(file_names: Sequence[str], entries: Mapping[str, ImageEntry]) -> dict[str, str]:
    """Sub-folder paths -> unique flat names, so one `images/<split>/` folder can hold them all.

    Stems must be unique case-insensitively (label files are `<stem>.txt`; some disks ignore case);
    a clash gets a short digest of the original path. A suffix loaders do not recognise is replaced.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for file_name in sorted(file_names):
        path = PurePosixPath(file_name.replace("/", "__"))
        stem, suffix = path.stem, path.suffix
        if suffix.lower() not in _IMAGE_SUFFIXES:
            stem, suffix = path.name, _FORMAT_SUFFIX.get(entries[file_name].format.upper(), ".jpg")
        if stem.lower() in taken:
            stem = f"{stem}~{hashlib.sha256(file_name.encode()).hexdigest()[:8]}"
        taken.add(stem.lower())
        out[file_name] = stem + suffix
    return out


def task_items(manifest: Manifest, doc: Doc, splits: Mapping[str, Split]) -> list[Item]:
    """The images the task lists (backgrounds included), each with its split; every one must have a split."""
    entries = manifest.images_by_name()
    records = list(doc["images"])
    missing = [r["file_name"] for r in records if r["file_name"] not in entries]
    if missing:
        raise ValueError(f"{len(missing)} image(s) not in the manifest, e.g. {missing[0]!r}")
    unsplit = [r["file_name"] for r in records if splits.get(r["file_name"]) not in SPLITS]
    if unsplit:
        raise ValueError(f"{len(unsplit)} image(s) have no split, e.g. {unsplit[0]!r}")
    names = flat_names([r["file_name"] for r in records], entries)
    return [Item(splits[r["file_name"]], names[r["file_name"]], r, entries[r["file_name"]]) for r in records]


def classes_file(task: Task, doc: Doc, items: list[Item]) -> bytes:
    """`dice_classes.json`: the task, each class's index, id and name, and the image count per split."""
    index = class_index(doc)
    by_id = {c["id"]: c["name"] for c in doc["classes"]}
    counts = {s: sum(1 for i in items if i.split == s) for s in SPLITS}
    classes = [{"index": i, "id": cid, "name": by_id[cid]} for cid, i in index.items()]
    return json.dumps({"task": task, "classes": classes, "images": counts}, indent=2).encode() + b"\n"


def write_plan(dest: Path, plan: Plan, blob_path: BlobPath, link: bool = True) -> Path:
    """Materialise a plan under `dest`; images are hard links into the blob cache when `link` and possible."""
    for rel in plan.dirs:
        (dest / rel).mkdir(parents=True, exist_ok=True)
    for rel, data in plan.files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    for rel, entry in plan.images.items():
        target, source = dest / rel, blob_path(entry.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Never copy *into* an existing file: it may be a hard link, and the copy would rewrite the cached blob.
        target.unlink(missing_ok=True)
        try:
            if not link:
                raise OSError("linking disabled")
            os.link(source, target)
        except OSError:  # another filesystem, or a filesystem without hard links
            shutil.copyfile(source, target)
    return dest
