"""One dataset version -> the layouts trainers and tools want: YOLO, ImageFolder, COCO, DICE zips.

Every layout is first planned as data (small files as bytes, images as manifest entries,
empty directories), then either written to disk, with images hard-linked from a local blob
cache, or streamed as a zip. One planner per layout keeps the on-disk and zipped forms identical.

Inputs are a `Manifest`, the task's parsed canonical annotation documents (`docs`), a split
per image `file_name` (from `vtp_dice.splits`), and a way to reach image bytes by SHA-256:
`blob_path(sha) -> Path` for files in a local cache, `open_blob(sha) -> BinaryIO` for streaming.
Class ids become contiguous indices 0..n-1 in ascending DICE id order; every output carries the
mapping in `dice_classes.json`.

This module is the entry point; the parts live in `layout` (plans, disk output), `yolo`, `coco`,
`imagefolder` (one planner each) and `zipstream` (zips).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vtp_dice.coco import coco_dict, coco_plan
from vtp_dice.format import Split, Task
from vtp_dice.imagefolder import imagefolder_plan
from vtp_dice.layout import (
    BlobPath,
    Doc,
    Item,
    OpenBlob,
    Plan,
    class_index,
    flat_names,
    local_blobs,
    task_items,
    write_plan,
)
from vtp_dice.manifest import Manifest
from vtp_dice.yolo import merge_polygons, yolo_label, yolo_plan
from vtp_dice.zipstream import iter_coco_zip, iter_dice_zip, iter_yolo_zip, stream_plan

__all__ = [
    "BlobPath",
    "Doc",
    "Item",
    "OpenBlob",
    "Plan",
    "class_index",
    "coco_dict",
    "coco_plan",
    "flat_names",
    "imagefolder_plan",
    "iter_coco_zip",
    "iter_dice_zip",
    "iter_yolo_zip",
    "local_blobs",
    "merge_polygons",
    "stream_plan",
    "task_items",
    "write_coco",
    "write_imagefolder",
    "write_plan",
    "write_yolo",
    "yolo_label",
    "yolo_plan",
]


def write_yolo(
    dest: Path,
    task: Task,
    manifest: Manifest,
    docs: Mapping[Task, Doc],
    splits: Mapping[str, Split],
    blob_path: BlobPath,
    link: bool = True,
) -> Path:
    """YOLO dataset under `dest` (data.yaml with an absolute `path`); returns `dest`."""
    return write_plan(dest, yolo_plan(task, manifest, docs, splits, str(dest.resolve())), blob_path, link)


def write_imagefolder(
    dest: Path,
    manifest: Manifest,
    docs: Mapping[Task, Doc],
    splits: Mapping[str, Split],
    blob_path: BlobPath,
    link: bool = True,
) -> Path:
    """ImageFolder root (`train/`, `val/`, maybe `test/`) for classification; returns `dest`."""
    return write_plan(dest, imagefolder_plan(manifest, docs, splits), blob_path, link)


def write_coco(
    dest: Path,
    task: Task,
    manifest: Manifest,
    docs: Mapping[Task, Doc],
    splits: Mapping[str, Split],
    blob_path: BlobPath,
    link: bool = True,
) -> Path:
    """COCO dataset under `dest`; returns `dest`."""
    return write_plan(dest, coco_plan(task, manifest, docs, splits), blob_path, link)
