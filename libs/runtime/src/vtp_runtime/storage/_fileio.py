"""Blocking file helpers shared by the drivers; callers run them through ``asyncio.to_thread``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .base import DEFAULT_CHUNK_SIZE


def copy_hashing(src: BinaryIO, dst: BinaryIO | None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[str, int]:
    """Copy ``src`` into ``dst`` (or just read it when ``dst`` is None); return (sha256 hex, size)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(chunk_size):
        digest.update(chunk)
        size += len(chunk)
        if dst is not None:
            dst.write(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    """Hash a file in chunks, never holding it whole; return (sha256 hex, size)."""
    with path.open("rb") as src:
        return copy_hashing(src, None)


def fsync_close(fh: BinaryIO, sync: bool = True) -> None:
    """Flush and fsync before closing, so a rename that follows never exposes a half-written file.

    With ``sync=False`` the caller promises a later barrier (``os.sync``) before relying on the data.
    """
    fh.flush()
    if sync:
        os.fsync(fh.fileno())
    fh.close()


def unlink_quietly(path: Path) -> None:
    """Remove a temp file during cleanup; a failure here must not mask the original error."""
    with contextlib.suppress(OSError):
        path.unlink()


@contextlib.contextmanager
def atomic_target(dest: Path, sync: bool = True, make_parent: bool = True) -> Iterator[BinaryIO]:
    """Yield a temp file beside ``dest``; on success it replaces ``dest`` atomically, on error it vanishes.

    The temp file lives in the same directory so ``os.replace`` never crosses file systems.
    """
    if make_parent:
        dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    fh = os.fdopen(fd, "wb")
    try:
        yield fh
        fsync_close(fh, sync)
        os.replace(tmp, dest)
    except BaseException:  # also on cancellation: never leave temp files behind
        fh.close()
        unlink_quietly(tmp)
        raise
