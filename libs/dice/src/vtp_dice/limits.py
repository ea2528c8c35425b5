"""What an upload may cost us, and reads that enforce it on the bytes an entry really produces.

Declared sizes can lie: a limited reader counts what decompression actually yields and
rejects the upload past its limit; a corrupt entry becomes a `corrupt_entry` problem.
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from vtp_dice.format import DatasetRejected, Problem

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MiB = 1 << 20
GiB = 1 << 30
# What a corrupt or lying entry raises while being decompressed.
READ_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError, RuntimeError, ValueError)


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


def corrupt_entry(file: str, exc: Exception) -> DatasetRejected:
    """The rejection for an entry that cannot be read (`exc` is one of READ_ERRORS)."""
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
            raise corrupt_entry(self._file, exc) from exc
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
