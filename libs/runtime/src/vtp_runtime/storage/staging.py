"""Staged writes: objects written now, from any thread, invisible until published together.

A bulk import (thousands of images) can then do the slow per-object I/O while it is still
validating, and either publish everything at once (cheap renames) or drop it all: nothing staged
is ever visible under its key before ``publish``. Drivers without a cheap invisible area (S3)
stage nothing: ``stage`` then leaves ``staged`` empty and the caller stores objects as usual.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from ._fileio import unlink_quietly
from .base import DEFAULT_CONTENT_TYPE, StorageError, validate_key


class Staging:
    """Stages nothing (the default): every object is left to the caller's ordinary writes."""

    def __init__(self) -> None:
        self.staged: dict[str, tuple[Path, Path | None]] = {}  # key -> (data temp file, sidecar temp file)

    def stage(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE, sha256: str | None = None) -> None:
        """Write ``data`` for ``key`` invisibly (blocking; thread-safe); skipped when the key already exists."""
        validate_key(key)

    async def publish(self) -> int:
        """Make every staged object visible under its key; returns how many."""
        return 0

    async def discard(self) -> None:
        """Drop whatever is staged and not yet published."""


class LocalStaging(Staging):
    """Temp files (object and sidecar) on the store's file system, renamed into place by ``publish``.

    With ``sidecars=False`` no sidecar is written: ``stat`` then reports no sha256 or content type,
    which suits content-addressed keys (the key is the hash) and halves the files created.
    """

    def __init__(
        self,
        tmp: Path,
        data: Path,
        meta: Path,
        ensure_dir: Callable[[Path], None],
        sync_each_write: bool,
        sidecars: bool = True,
    ) -> None:
        super().__init__()
        self._tmp, self._data, self._meta, self._ensure_dir = tmp, data, meta, ensure_dir
        self._sync_each, self._sidecars = sync_each_write, sidecars
        self._prefix = f"stage-{uuid.uuid4().hex}-"
        self._names = itertools.count()  # next() on a count is atomic under the GIL
        self._lock = threading.Lock()

    def stage(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE, sha256: str | None = None) -> None:
        validate_key(key)
        if key in self.staged or os.path.isfile(self._data / key):
            return
        self._ensure_dir(self._tmp)
        body = self._write_temp(data)
        sidecar = None
        try:
            if self._sidecars:
                # The sidecar names the temp file's size and mtime, which os.replace keeps.
                st = os.stat(body)
                sha = sha256 or hashlib.sha256(data).hexdigest()
                meta = {"sha256": sha, "content_type": content_type, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
                sidecar = self._write_temp(json.dumps(meta).encode())
        except BaseException:
            unlink_quietly(body)
            raise
        with self._lock:
            self.staged[key] = (body, sidecar)

    def _write_temp(self, data: bytes) -> Path:
        # Raw fds and counter names, not tempfile: this runs thousands of times per import, on probe threads.
        path = self._tmp / f"{self._prefix}{next(self._names)}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
            if self._sync_each:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            unlink_quietly(path)
            raise
        os.close(fd)
        return path

    async def publish(self) -> int:
        with self._lock:
            items, self.staged = list(self.staged.items()), {}

        def run() -> None:
            for i, (key, (body, sidecar)) in enumerate(items):
                try:
                    dest = self._data / key
                    self._ensure_dir(dest.parent)
                    os.replace(body, dest)  # the data first: a sidecar alone would describe nothing
                    if sidecar is not None:
                        self._ensure_dir((self._meta / key).parent)
                        os.replace(sidecar, self._meta / key)
                    else:  # a stale sidecar must not describe the new file (it names size and mtime; be sure)
                        unlink_quietly(self._meta / key)
                except BaseException:
                    _unlink_all(items[i:])
                    raise

        try:
            await asyncio.to_thread(run)
        except OSError as exc:
            raise StorageError(f"local storage failed: {exc}") from exc
        return len(items)

    async def discard(self) -> None:
        with self._lock:
            items, self.staged = list(self.staged.items()), {}
        if items:
            await asyncio.to_thread(_unlink_all, items)


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (huge buffers, signals): loop until done."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_all(items: list[tuple[str, tuple[Path, Path | None]]]) -> None:
    for _, (body, sidecar) in items:
        unlink_quietly(body)
        if sidecar is not None:
            unlink_quietly(sidecar)
