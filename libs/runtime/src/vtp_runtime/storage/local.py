"""Local-directory driver: development, tests and single-node installs.

Layout under ``root``::

    <bucket>/<key>              object bytes
    .vtp-meta/<bucket>/<key>    JSON sidecar: sha256, content type, and the size/mtime it describes
    .vtp-tmp/                   in-flight writes (same file system, so ``os.replace`` is atomic)

The sidecar tree mirrors the data tree exactly, so it can never alias a key the data tree does
not. A sidecar whose size/mtime no longer match the data file (crash between the two renames,
or a file changed behind our back) is ignored and ``stat`` reports ``sha256=None`` rather than
hashing a possibly huge file on every call. Keys whose path segments exceed the file system's
name limit (usually 255 bytes) fail with StorageError here although S3 would accept them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO, TypeVar

from ._common import StoreBase
from ._fileio import atomic_target, copy_hashing, fsync_close, unlink_quietly
from .base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    validate_key,
    validate_prefix,
)
from .staging import LocalStaging

T = TypeVar("T")
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class LocalObjectStore(StoreBase):
    """Objects as files under ``root/bucket``; all blocking I/O runs in worker threads."""

    scheme = "local"

    def __init__(self, root: Path, bucket: str, sync_each_write: bool = True) -> None:
        super().__init__(bucket)
        # Off: writes skip their fsync and callers call sync() once before relying on a batch of them
        # (a bulk upload of thousands of images would otherwise pay two fsyncs per image).
        self._sync_each = sync_each_write
        self._made_dirs: set[Path] = set()  # mkdir per write costs more than the write of a small file
        self._root = Path(root)
        self._data = self._root / bucket
        self._meta = self._root / ".vtp-meta" / bucket
        self._tmp = self._root / ".vtp-tmp"

    async def _run(self, fn: Callable[..., T], *args: object, key: str | None = None) -> T:
        """Run blocking I/O in a thread; OSError becomes StorageError (ObjectNotFound for reads of ``key``)."""
        try:
            return await asyncio.to_thread(fn, *args)
        except _MISSING as exc:
            if key is not None:
                raise ObjectNotFound(key) from exc
            raise StorageError(f"local storage failed: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"local storage failed: {exc}") from exc

    def _ensure_dir(self, path: Path) -> None:
        if path not in self._made_dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path)

    def _new_temp(self) -> tuple[BinaryIO, Path]:
        self._ensure_dir(self._tmp)
        fd, name = tempfile.mkstemp(dir=self._tmp, suffix=".part")
        return os.fdopen(fd, "wb"), Path(name)

    def _commit(self, key: str, tmp: Path, sha256: str, content_type: str) -> ObjectInfo:
        """Move a finished temp file into place, then write its sidecar."""
        try:
            st = tmp.stat()
            dest = self._data / key
            self._ensure_dir(dest.parent)
            os.replace(tmp, dest)
        except BaseException:
            unlink_quietly(tmp)
            raise
        # mtime survives os.replace, so the sidecar can name exactly the file version it describes.
        meta = {"sha256": sha256, "content_type": content_type, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        self._ensure_dir((self._meta / key).parent)
        with atomic_target(self._meta / key, self._sync_each, make_parent=False) as fh:
            fh.write(json.dumps(meta).encode())
        return ObjectInfo(key, self.uri(key), st.st_size, sha256, content_type)

    def _write_sync(self, key: str, src: bytes | Path, content_type: str) -> ObjectInfo:
        fh, tmp = self._new_temp()
        try:
            if isinstance(src, bytes):
                fh.write(src)
                sha256 = hashlib.sha256(src).hexdigest()
            else:
                with src.open("rb") as source:
                    sha256, _ = copy_hashing(source, fh)
            fsync_close(fh, self._sync_each)
        except BaseException:
            fh.close()
            unlink_quietly(tmp)
            raise
        return self._commit(key, tmp, sha256, content_type)

    def _exists_sync(self, key: str) -> bool:
        return (self._data / key).is_file()

    def _put_bytes_sync(self, key: str, data: bytes, content_type: str) -> None:
        self._write_sync(key, data, content_type)

    async def _blocking(self, fn: Callable[[], int]) -> int:
        return await self._run(fn)

    async def put_bytes(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically."""
        return await self._run(self._write_sync, validate_key(key), bytes(data), content_type)

    async def put_file(self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Copy the file at ``path`` in chunks, hashing as it goes."""
        return await self._run(self._write_sync, validate_key(key), Path(path), content_type)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Write chunks to a temp file as they arrive (flat memory), then commit it."""
        validate_key(key)
        fh, tmp = await self._run(self._new_temp)
        digest = hashlib.sha256()
        try:
            async for chunk in chunks:
                digest.update(chunk)
                await self._run(fh.write, chunk)
            await self._run(fsync_close, fh, self._sync_each)
        except BaseException:
            fh.close()
            unlink_quietly(tmp)
            raise
        return await self._run(self._commit, key, tmp, digest.hexdigest(), content_type)

    async def sync(self) -> None:
        """Make every write so far durable (one barrier for a batch of unsynced writes)."""
        if not self._sync_each:
            await self._run(os.sync)

    async def delete(self, key: str) -> None:
        """Remove the object and its sidecar; missing objects are fine."""
        validate_key(key)

        def _delete() -> None:
            for path in (self._data / key, self._meta / key):
                # absent, or the key is really a "directory" of other keys
                with contextlib.suppress(*_MISSING):
                    path.unlink()

        await self._run(_delete)

    def _stat_sync(self, key: str) -> ObjectInfo:
        st = (self._data / key).stat()
        if not S_ISREG(st.st_mode):
            raise IsADirectoryError(key)  # "a" when only "a/b" exists: not an object
        sha256: str | None = None
        content_type: str | None = None
        try:
            meta = json.loads((self._meta / key).read_bytes())
            if isinstance(meta, dict) and meta.get("size") == st.st_size and meta.get("mtime_ns") == st.st_mtime_ns:
                sha256, content_type = meta.get("sha256"), meta.get("content_type")
        except (OSError, ValueError):  # missing or torn sidecar: report unknown, not failure
            pass
        return ObjectInfo(key, self.uri(key), st.st_size, sha256, content_type)

    async def stat(self, key: str) -> ObjectInfo:
        """Describe the object; ObjectNotFound if missing."""
        return await self._run(self._stat_sync, validate_key(key), key=key)

    async def open_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the file's bytes chunk by chunk."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = self._data / validate_key(key)

        def _open() -> BinaryIO:
            return path.open("rb")

        fh = await self._run(_open, key=key)
        try:
            while chunk := await self._run(fh.read, chunk_size):
                yield chunk
        finally:
            fh.close()

    async def get_file(self, key: str, dest: Path) -> Path:
        """Copy the object to ``dest`` via a temp sibling and rename."""
        src = self._data / validate_key(key)
        dest = Path(dest)

        def _copy() -> None:
            with src.open("rb") as source:  # a missing source is ObjectNotFound (via _run) ...
                try:
                    with atomic_target(dest) as target:
                        copy_hashing(source, target)
                except _MISSING as exc:  # ... but an unusable destination is not
                    raise StorageError(f"cannot write {dest}: {exc}") from exc

        await self._run(_copy, key=key)
        return dest

    async def list_keys(self, prefix: str = "") -> list[str]:
        """Return sorted keys under ``prefix``, walking only the folder the prefix points into."""
        validate_prefix(prefix)
        start = self._data / prefix.rpartition("/")[0]

        def _walk() -> list[str]:
            keys: list[str] = []
            for dirpath, _dirs, files in os.walk(start):
                rel = Path(dirpath).relative_to(self._data).as_posix()
                for name in files:
                    key = name if rel == "." else f"{rel}/{name}"
                    if key.startswith(prefix):
                        keys.append(key)
            return sorted(keys)

        return await self._run(_walk)

    async def list_modified(self, prefix: str = "") -> list[tuple[str, datetime]]:
        """Keys under ``prefix`` with their files' modification times."""
        keys = await self.list_keys(prefix)

        def _stat_all() -> list[tuple[str, datetime]]:
            out = []
            for key in keys:
                with contextlib.suppress(*_MISSING):  # deleted since the listing
                    out.append((key, datetime.fromtimestamp((self._data / key).stat().st_mtime, UTC)))
            return out

        return await self._run(_stat_all)

    def staging(self, sidecars: bool = True) -> LocalStaging:
        """Objects staged as temp files in ``.vtp-tmp``, published by renames (see :class:`LocalStaging`)."""
        return LocalStaging(self._tmp, self._data, self._meta, self._ensure_dir, self._sync_each, sidecars)

    async def check(self) -> None:
        """Make sure the folders exist and a file can be written and removed."""

        def _probe() -> None:
            self._data.mkdir(parents=True, exist_ok=True)
            self._meta.mkdir(parents=True, exist_ok=True)
            fh, tmp = self._new_temp()
            fh.close()
            tmp.unlink()

        await self._run(_probe)
