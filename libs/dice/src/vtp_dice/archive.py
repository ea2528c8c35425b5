"""Safe reading of an uploaded DICE zip (a zip of a dataset root).

Uploads are hostile. Every entry is checked from the central directory before a
single byte is decompressed, and every read is capped again on the bytes it
actually produces, because declared sizes can lie.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from vtp_dice.format import (
    ANNOTATION_FILES,
    IMAGES_DIR,
    LEGACY_ANNOTATION_FILE,
    METADATA_FILE,
    DatasetRejected,
    Problem,
    normalize_file_name,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class ArchiveLimits:
    """What an upload may cost us. Ratios are checked only above `ratio_min_size` (tiny files compress wildly)."""

    max_entries: int = 200_000
    max_total_uncompressed: int = 20 * GiB
    max_compression_ratio: float = 200.0
    ratio_min_size: int = 1 * MiB
    max_json_bytes: int = 256 * MiB
    max_image_bytes: int = 256 * MiB  # one image is read into memory when probed
    max_image_pixels: int = 100_000_000
    max_problems: int = 200


_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc: C0, DEL and C1
_JSON_FILES = frozenset({*ANNOTATION_FILES.values(), LEGACY_ANNOTATION_FILE, METADATA_FILE})
# What a corrupt or lying entry raises while being decompressed.
READ_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError, RuntimeError, ValueError)


def entry_name(info: zipfile.ZipInfo) -> str:
    """The name the uploader meant.

    Without the UTF-8 flag zipfile decodes names as cp437, but many tools write
    UTF-8 without setting it: take the raw bytes as UTF-8 when they are valid
    UTF-8 (real cp437 text with high bytes rarely is), else keep cp437.
    `orig_filename` is used because zipfile truncates `filename` at a NUL.
    """
    if info.flag_bits & _UTF8_FLAG or info.orig_filename.isascii():
        return info.orig_filename
    try:
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeDecodeError:
        return info.orig_filename


def display_name(name: str) -> str:
    """`name` with control characters escaped, safe to show in a UI or a log."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)


def _entry_problems(info: zipfile.ZipInfo, name: str, limits: ArchiveLimits) -> list[Problem]:
    """Problems visible from the central directory alone."""
    found: list[tuple[str, str]] = []
    if _CONTROL.search(name):
        found.append(("invalid_entry_name", "entry name contains control characters"))
    path = name.replace("\\", "/")  # an extractor on Windows treats `\` as a separator
    if path.startswith("/") or _DRIVE.match(path) or ".." in path.split("/"):
        found.append(("zip_slip", "entry name escapes the archive (absolute, drive letter or '..')"))
    if stat.S_ISLNK(info.external_attr >> 16):
        found.append(("zip_symlink", "symbolic links are not allowed"))
    if info.flag_bits & _ENCRYPTED_FLAG:
        found.append(("encrypted_entry", "encrypted entries are not allowed"))
    elif info.compress_type not in _METHODS:
        found.append(("unsupported_compression", f"compression method {info.compress_type}"))
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_min_size and ratio > limits.max_compression_ratio:
        found.append(("compression_ratio_exceeded", f"compression ratio {ratio:.0f} is suspicious"))
    return [Problem(code, message, display_name(name)) for code, message in found]


def _is_junk(path: str) -> bool:
    parts = path.split("/")
    return "__MACOSX" in parts or parts[-1] in _JUNK_FILES


def _root(paths: list[str]) -> str:
    """The dataset root: the archive root, or the single top-level folder holding everything."""
    tops = {p.split("/", 1)[0] for p in paths}
    if len(tops) == 1 and all("/" in p for p in paths):
        return f"{tops.pop()}/"
    return ""


def _corrupt(file: str, exc: Exception) -> DatasetRejected:
    return DatasetRejected([Problem("corrupt_entry", f"cannot read entry: {exc}", file)], kind="archive")


class _LimitedRaw(io.RawIOBase):
    """Counts the bytes a stream really produces and rejects the upload past `limit`."""

    def __init__(self, raw: IO[bytes], limit: int, code: str, file: str) -> None:
        self._raw, self._left, self._limit, self._code, self._file = raw, limit, limit, code, file

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        # Ask for one byte more than allowed so that an overrun is seen, never buffered.
        data = self._read(min(len(view), self._left + 1))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        chunks = []
        while chunk := self._read(min(4 * MiB, self._left + 1)):
            chunks.append(chunk)
        return b"".join(chunks)

    def _read(self, n: int) -> bytes:
        try:
            data = self._raw.read(n)
        except READ_ERRORS as exc:
            raise _corrupt(self._file, exc) from exc
        self._left -= len(data)
        if self._left < 0:
            message = f"entry produces more than {self._limit} bytes"
            raise DatasetRejected([Problem(self._code, message, self._file)], kind="archive")
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


def limited_reader(raw: IO[bytes], limit: int, code: str, file: str) -> IO[bytes]:
    """`raw`, raising DatasetRejected(`code`) once it has produced more than `limit` bytes."""
    return io.BufferedReader(_LimitedRaw(raw, limit, code, file), buffer_size=1 * MiB)


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

    def read_json(self, path: str) -> bytes:
        """An annotation or metadata file (path relative to the root), at most `max_json_bytes`."""
        info = self.metadata if path == METADATA_FILE else self.annotation_files.get(path)
        if info is None:
            raise KeyError(path)
        with self._open(self._zf, info, self.limits.max_json_bytes, "json_too_large", path) as stream:
            return stream.read()

    def open_image(self, file_name: str, handle: zipfile.ZipFile | None = None) -> IO[bytes]:
        """A stream of an image's bytes, read through `handle` (a `new_handle()`) or the archive's own."""
        info = self.images[file_name]
        limit = min(info.file_size, self.limits.max_image_bytes)  # never more than declared and checked
        return self._open(handle or self._zf, info, limit, "archive_too_large", f"{IMAGES_DIR}{file_name}")

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
            raise _corrupt(file, exc) from exc
        return limited_reader(raw, limit, code, file)

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> DiceArchive:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open_archive(path: Path, limits: ArchiveLimits | None = None) -> DiceArchive:
    """Open and check an uploaded zip; raises DatasetRejected with every problem found (capped)."""
    limits = limits or ArchiveLimits()
    if not path.is_file():  # a missing file is our bug, not a bad upload
        raise FileNotFoundError(path)
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # hostile central directories raise many kinds of errors; all mean "not a zip"
        raise DatasetRejected([Problem("not_a_zip", f"not a readable zip archive: {exc}")], "archive") from exc
    try:
        return _index(path, zf, limits)
    except BaseException:
        zf.close()
        raise


def _index(path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits) -> DiceArchive:
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
    for info in infos:
        name = entry_name(info)
        found = _entry_problems(info, name, limits)
        for problem in found:
            add(problem)
        path_name = name.replace("\\", "/")
        # Directories carry no data; junk is dropped silently; unsafe entries are never classified.
        if not found and not path_name.endswith("/") and not _is_junk(path_name):
            files.append((path_name, info))

    archive = DiceArchive(path, zf, limits, _root([p for p, _ in files]))
    for path_name, info in files:
        rel, file = path_name[len(archive.root) :], path_name
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
    if not archive.annotation_files:
        expected = ", ".join([*ANNOTATION_FILES.values(), LEGACY_ANNOTATION_FILE])
        raise DatasetRejected([Problem("no_annotation_file", f"the dataset root holds none of: {expected}")])
    return archive
