"""From an uploaded zip to a validated dataset version (CPU work, run in a thread).

Everything is checked before anything is stored: archive safety first (zip
slip, bombs), then every image that an annotation file references is sniffed
and decoded, then every annotation file is validated against those images. All
problems are collected and raised together; nothing is written on failure (good
images may be staged while probing, invisible until the caller publishes them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtp_dice.archive import ArchiveLimits, DiceArchive, check_annotation_files, open_archive
from vtp_dice.detect_format import import_archive
from vtp_dice.format import ANNOTATION_FILES, METADATA_FILE, DatasetRejected, Problem, Task
from vtp_dice.images import OnImage, probe_all
from vtp_dice.import_check import check_import
from vtp_dice.import_source import Imported
from vtp_dice.manifest import ImageEntry
from vtp_dice.validate import canonicalize_doc, parse_annotation_file, referenced_images, validate_annotation_doc


@dataclass
class BaseVersion:
    """The head version an upload adds to (empty for a new dataset)."""

    docs: dict[Task, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    images: dict[str, ImageEntry] = field(default_factory=dict)


@dataclass
class Inspected:
    """A valid new version: canonical docs, metadata, every image's facts; the archive stays open."""

    docs: dict[Task, dict[str, Any]]
    metadata: dict[str, Any] | None
    images: dict[str, ImageEntry]
    from_archive: list[str]  # images whose bytes must be copied out of the archive
    archive: DiceArchive

    def read_image(self, file_name: str) -> bytes:
        with self.archive.open_image(file_name) as stream:
            return stream.read()

    def close(self) -> None:
        self.archive.close()


def inspect_upload(
    path: Path,
    limits: ArchiveLimits,
    base: BaseVersion,
    workers: int,
    on_image: OnImage | None = None,
    fmt: str = "auto",
) -> Inspected:
    """Validate an upload merged onto `base`; raises DatasetRejected with every problem found.

    `fmt` (dice, yolo, coco, auto) says how to read it: YOLO and COCO are converted to DICE first
    and validated the same way, problems naming the original files. `on_image` gets each good
    image's bytes as it is probed (to stage them while the rest is checked).
    """
    archive = open_archive(path, limits, require_annotations=False)
    try:
        imported = import_archive(archive, fmt)
        if imported is None:
            check_annotation_files(archive)
            return _inspect(archive, limits, base, workers, on_image)
        return _inspect_imported(archive, limits, base, workers, on_image, imported)
    except BaseException:
        archive.close()
        raise


def _inspect_imported(
    archive: DiceArchive,
    limits: ArchiveLimits,
    base: BaseVersion,
    workers: int,
    on_image: OnImage | None,
    imported: Imported,
) -> Inspected:
    """An upload converted from YOLO or COCO, checked like DICE (problems name the original files)."""
    docs, images = check_import(archive, imported, limits, workers, on_image, base.docs, base.images)
    canonical = {task: canonicalize_doc(doc) for task, doc in docs.items()}
    from_archive = sorted(name for name in imported.images if name in images)
    return Inspected(canonical, base.metadata, images, from_archive, archive)


def _inspect(
    archive: DiceArchive, limits: ArchiveLimits, base: BaseVersion, workers: int, on_image: OnImage | None
) -> Inspected:
    problems: list[Problem] = []
    uploaded: dict[Task, tuple[str, dict[str, Any]]] = {}
    for path in sorted(archive.annotation_files):
        task, doc, found = parse_annotation_file(path, archive.read_json(path))
        problems += found
        if task is None or doc is None:
            continue
        if task in uploaded:
            problems.append(Problem("duplicate_task_file", f"two annotation files for task {task}", path))
            continue
        uploaded[task] = (path, doc)
    metadata = base.metadata
    if archive.metadata is not None:
        metadata, found = _read_metadata(archive)
        problems += found
    docs = {**base.docs, **{task: doc for task, (_, doc) in uploaded.items()}}
    if not docs and not problems:
        problems.append(Problem("no_annotation_file", "the archive holds no annotation file"))

    wanted = set().union(*(referenced_images(doc) for doc in docs.values())) if docs else set()
    in_archive = sorted(wanted & set(archive.images))
    probed = probe_all(archive, in_archive, limits.max_image_pixels, workers, on_image)
    images = {name: entry for name, entry in base.images.items() if name in wanted}
    broken: set[str] = set()
    for name, result in probed.items():
        if isinstance(result, Problem):
            problems.append(result)
            broken.add(name)
        else:
            images[name] = result
    for task, doc in docs.items():
        path = uploaded[task][0] if task in uploaded else ANNOTATION_FILES[task]
        problems += validate_annotation_doc(path, task, doc, images, broken, limits.max_problems)
    if problems:
        raise DatasetRejected(_capped(problems, limits.max_problems))
    canonical = {task: canonicalize_doc(doc) for task, doc in docs.items()}
    return Inspected(canonical, metadata, images, [n for n in in_archive if n in images], archive)


def _read_metadata(archive: DiceArchive) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        doc = json.loads(archive.read_json(METADATA_FILE))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, [Problem("invalid_json", f"metadata.json is not JSON: {exc}", METADATA_FILE)]
    if not isinstance(doc, dict):
        return None, [Problem("schema_violation", "metadata.json must be a JSON object", METADATA_FILE, "")]
    return doc, []


def _capped(problems: list[Problem], cap: int) -> list[Problem]:
    if len(problems) <= cap:
        return problems
    return [*problems[:cap], Problem("too_many_problems", f"{len(problems) - cap} more problems not shown")]


def image_map(entries: Mapping[str, ImageEntry]) -> tuple[ImageEntry, ...]:
    """Images in manifest order (sorted by file name)."""
    return tuple(entries[name] for name in sorted(entries))
