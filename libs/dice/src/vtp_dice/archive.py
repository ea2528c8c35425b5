"""Safe reading of an uploaded DICE zip (a zip of a dataset root).

Uploads are hostile. Every entry is checked from the central directory before a
single byte is decompressed (`vtp_dice.entries`), and every read is capped again on
the bytes it actually produces, because declared sizes can lie (`vtp_dice.limits`).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from types import TracebackType
from typing import IO

from vtp_dice.entries import display_name, entry_name, entry_problems, is_junk
from vtp_dice.format import (
    ANNOTATION_FILES,
    IMAGES_DIR,
    LEGACY_ANNOTATION_FILE,
    METADATA_FILE,
    DatasetRejected,
    Problem,
    normalize_file_name,
)
from vtp_dice.limits import READ_ERRORS, ArchiveLimits, GiB, MiB, corrupt_entry, limited_reader

__all__ = [
    "READ_ERRORS",
    "ArchiveLimits",
    "DiceArchive",
    "GiB",
    "MiB",
    "check_annotation_files",
    "display_name",
    "entry_name",
    "limited_reader",
    "open_archive",
]

_JSON_FILES = frozenset({*ANNOTATION_FILES.values(), LEGACY_ANNOTATION_FILE, METADATA_FILE})


def _root(paths: list[str]) -> str:
    """The dataset root: the archive root, or the single top-level folder holding everything."""
    tops = {p.split("/", 1)[0] for p in paths}
    if len(tops) == 1 and all("/" in p for p in paths):
        return f"{tops.pop()}/"
    return ""


class DiceArchive:
    """A checked DICE zip. One handle is not safe for concurrent reads: threads use `new_handle()`."""

    def __init__(self, path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits, root: str) -> None:
        self.path, self.limits, self.root, self._zf = path, limits, root, zf
        assert zf.fp is not None
        st = os.fstat(zf.fp.fileno())
        self._identity = (st.st_dev, st.st_ino)
        self.annotation_files: dict[str, zipfile.ZipInfo] = {}  # per-task files and legacy annotations.json
        self.metadata: zipfile.ZipInfo | None = None
        self.images: dict[str, zipfile.ZipInfo] = {}  # file_name relative to images/
        self.other: list[str] = []  # ignored entries, for information
        self.entries: dict[str, zipfile.ZipInfo] = {}  # every checked file, relative to the root (for importers)
        self.dirs: set[str] = set()  # directory entries (relative, with a trailing /): empty class folders count
        self.image_sources: dict[str, str] = {}  # file_name -> the entry it came from, when an importer renamed it

    def read_json(self, path: str) -> bytes:
        """An annotation or metadata file (path relative to the root), at most `max_json_bytes`."""
        info = self.metadata if path == METADATA_FILE else self.annotation_files.get(path)
        if info is None:
            raise KeyError(path)
        with self._open(self._zf, info, self.limits.max_json_bytes, "json_too_large", path) as stream:
            return stream.read()

    def read_entry(self, rel: str, limit: int, code: str) -> bytes:
        """Any checked file (path relative to the root), at most `limit` bytes (else DatasetRejected(`code`))."""
        with self._open(self._zf, self.entries[rel], limit, code, self.root + rel) as stream:
            return stream.read()

    def open_image(self, file_name: str, handle: zipfile.ZipFile | None = None) -> IO[bytes]:
        """A stream of an image's bytes, read through `handle` (a `new_handle()`) or the archive's own."""
        info = self.images[file_name]
        limit = min(info.file_size, self.limits.max_image_bytes)  # never more than declared and checked
        file = self.image_sources.get(file_name, f"{IMAGES_DIR}{file_name}")
        return self._open(handle or self._zf, info, limit, "archive_too_large", file)

    def new_handle(self) -> zipfile.ZipFile:
        """Another ZipFile on the same file, for a worker thread; the caller closes it."""
        zf = zipfile.ZipFile(self.path)
        assert zf.fp is not None
        st = os.fstat(zf.fp.fileno())
        if (st.st_dev, st.st_ino) != self._identity:  # offsets in our ZipInfos are only valid for our file
            zf.close()
            raise RuntimeError(f"{self.path} was replaced while open")
        return zf

    def _open(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, code: str, file: str) -> IO[bytes]:
        try:
            raw = zf.open(info)
        except READ_ERRORS as exc:
            raise corrupt_entry(file, exc) from exc
        return limited_reader(raw, limit, code, file)

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> DiceArchive:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open_archive(path: Path, limits: ArchiveLimits | None = None, require_annotations: bool = True) -> DiceArchive:
    """Open and check an uploaded zip; raises DatasetRejected with every problem found (capped).

    `require_annotations=False` leaves the DICE annotation files optional (an import from another format).
    """
    limits = limits or ArchiveLimits()
    if not path.is_file():  # a missing file is our bug, not a bad upload
        raise FileNotFoundError(path)
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # hostile central directories raise many kinds of errors; all mean "not a zip"
        raise DatasetRejected([Problem("not_a_zip", f"not a readable zip archive: {exc}")], "archive") from exc
    try:
        return _index(path, zf, limits, require_annotations)
    except BaseException:
        zf.close()
        raise


def _index(path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits, require_annotations: bool) -> DiceArchive:
    problems: list[Problem] = []
    dropped = 0

    def add(problem: Problem) -> None:
        nonlocal dropped
        if len(problems) < limits.max_problems:
            problems.append(problem)
        else:
            dropped += 1

    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        add(Problem("too_many_entries", f"{len(infos)} entries, at most {limits.max_entries} allowed"))
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_uncompressed:
        add(Problem("archive_too_large", f"{total} bytes uncompressed, at most {limits.max_total_uncompressed}"))
    files: list[tuple[str, zipfile.ZipInfo]] = []
    dirs: list[str] = []
    for info in infos:
        name = entry_name(info)
        found = entry_problems(info, name, limits)
        for problem in found:
            add(problem)
        path_name = name.replace("\\", "/")
        # Directories carry no data; junk is dropped silently; unsafe entries are never classified.
        if not found and not path_name.endswith("/") and not is_junk(path_name):
            files.append((path_name, info))
        elif not found and not is_junk(path_name):
            dirs.append(path_name)

    archive = DiceArchive(path, zf, limits, _root([p for p, _ in files]))
    archive.dirs = {d[len(archive.root) :] for d in dirs if d.startswith(archive.root) and d != archive.root}
    for path_name, info in files:
        rel, file = path_name[len(archive.root) :], path_name
        archive.entries.setdefault(rel, info)
        if rel in _JSON_FILES:
            if info.file_size > limits.max_json_bytes:
                add(Problem("json_too_large", f"{info.file_size} bytes, at most {limits.max_json_bytes}", file))
            if rel in archive.annotation_files or (rel == METADATA_FILE and archive.metadata is not None):
                add(Problem("duplicate_entry", "the archive holds this file twice", file))
            elif rel == METADATA_FILE:
                archive.metadata = info
            else:
                archive.annotation_files[rel] = info
        elif rel.startswith(IMAGES_DIR):
            file_name = normalize_file_name(rel[len(IMAGES_DIR) :])
            if file_name is None:
                add(Problem("invalid_entry_name", "not a valid image file name", file))
            elif file_name in archive.images:
                add(Problem("duplicate_entry", "the archive holds this file twice", file))
            elif info.file_size > limits.max_image_bytes:
                add(Problem("image_too_large", f"{info.file_size} bytes, at most {limits.max_image_bytes}", file))
            else:
                archive.images[file_name] = info
        else:
            archive.other.append(path_name)

    if dropped:
        problems.append(Problem("too_many_problems", f"{dropped} more problem(s) not listed"))
    if problems:
        raise DatasetRejected(problems, kind="archive")
    if require_annotations:
        check_annotation_files(archive)
    return archive


def check_annotation_files(archive: DiceArchive) -> None:
    """A DICE upload needs at least one annotation file at its root."""
    if not archive.annotation_files:
        expected = ", ".join([*ANNOTATION_FILES.values(), LEGACY_ANNOTATION_FILE])
        raise DatasetRejected([Problem("no_annotation_file", f"the dataset root holds none of: {expected}")])
