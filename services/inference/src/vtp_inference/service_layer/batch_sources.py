"""Where a running batch reads its images: the uploaded zip or the dataset snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vtp_dice.archive import DiceArchive
from vtp_dice.format import DatasetRejected
from vtp_dice.store_source import StoreSnapshotSource
from vtp_inference.service_layer.batch_snapshot import read_images


class BatchInput(Protocol):
    """The batch's images by name: bytes, or why that one image cannot be had. Blocking."""

    def read(self, files: list[str], limit: int) -> list[bytes | DatasetRejected]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ZipSource:
    archive: DiceArchive

    def read(self, files: list[str], limit: int) -> list[bytes | DatasetRejected]:
        return _read_all(self.archive, files, limit)

    def close(self) -> None:
        self.archive.close()


@dataclass(frozen=True)
class SnapshotSource:
    source: StoreSnapshotSource

    def read(self, files: list[str], limit: int) -> list[bytes | DatasetRejected]:
        return read_images(self.source, files, limit)

    def close(self) -> None:
        pass


def _read_all(archive: DiceArchive, files: list[str], limit: int) -> list[bytes | DatasetRejected]:
    out: list[bytes | DatasetRejected] = []
    for name in files:
        try:
            out.append(archive.read_entry(name, limit, "image_too_large"))
        except DatasetRejected as exc:  # a corrupt or lying entry: that image's row says so
            out.append(exc)
    return out
