"""A dataset snapshot as a batch's images: chosen by split, read from object storage, each verified.

The snapshot's manifest, annotation files and frozen split assignment are content-addressed blobs
that `vtp_dice.store_source.StoreSnapshotSource` reads and verifies (as the exporter does); every
image is read the same way, by the SHA-256 the manifest records, so a batch never predicts bytes
other than the snapshot's. The reader's blob reads hop onto the event loop: call it from a thread.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from vtp_dice.format import DatasetRejected, Problem
from vtp_dice.store_source import BlobReader, StoreSnapshotSource

SPLITS = ("train", "val", "test", "all")


@dataclass(frozen=True)
class SnapshotImages:
    files: list[str]  # the images' paths in the snapshot, sorted: the batch's order
    image_ids: list[int]  # the snapshot's image id of each (its annotation files' ids)


def source_of(store: BlobReader, content_hash: str, snapshot_id: str) -> StoreSnapshotSource:
    return StoreSnapshotSource(store, content_hash, snapshot_id, asyncio.get_running_loop())


def images_of(source: StoreSnapshotSource, split_fingerprint: str, split: str) -> SnapshotImages:
    """The snapshot's images of `split` (its frozen assignment) or all of them. Blocking."""
    manifest = source.manifest()
    names = [i.file_name for i in manifest.images]
    if split != "all":
        assignment: dict[str, str] = json.loads(source.blob(split_fingerprint))
        names = [n for n in names if assignment.get(n) == split]
    ids: dict[str, int] = {}
    for task in manifest.tasks:  # every annotation file lists the images with their ids
        for image in source.annotation_doc(task).get("images", []):
            ids.setdefault(image["file_name"], int(image["id"]))
    return SnapshotImages(names, [ids.get(n, k + 1) for k, n in enumerate(names)])


def read_images(source: StoreSnapshotSource, files: list[str], limit: int) -> list[bytes | DatasetRejected]:
    """Each image's bytes, verified by its SHA-256, or why it cannot be had (that image's row). Blocking."""
    entries = source.manifest().images_by_name()
    out: list[bytes | DatasetRejected] = []
    for name in files:
        entry = entries.get(name)
        if entry is None:
            out.append(_rejected(name, "image_missing", "the snapshot's manifest does not list this image"))
        elif entry.size > limit:
            out.append(_rejected(name, "image_too_large", f"{entry.size} bytes; at most {limit}"))
        else:
            try:
                out.append(source.blob(entry.sha256))
            except ValueError as exc:  # the stored bytes are not the recorded ones
                out.append(_rejected(name, "image_corrupt", str(exc)))
    return out


def _rejected(name: str, code: str, message: str) -> DatasetRejected:
    return DatasetRejected([Problem(code, message, file=name)])
