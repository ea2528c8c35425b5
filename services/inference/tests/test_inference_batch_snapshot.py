"""A snapshot as batch input: images of a split in order, the snapshot's image ids, bytes verified."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from vtp_dice.format import DatasetRejected, canonical_json
from vtp_dice.manifest import ImageEntry, Manifest, blob_key, manifest_key
from vtp_inference.domain.batch_coco import coco_document
from vtp_inference.service_layer import batch_snapshot as snapshots


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.objects[blob_key(sha)] = data
        return sha

    async def open_stream(self, key: str) -> AsyncIterator[bytes]:
        yield self.objects[key]

    async def get_file(self, key: str, dest: Path) -> Any:
        raise NotImplementedError  # the snapshot reader reads blobs as streams


def _snapshot(store: FakeStore) -> tuple[str, str]:
    names = ["images/a.jpg", "images/b.jpg", "images/c.jpg"]
    entries = tuple(ImageEntry(n, store.put_blob(n.encode()), len(n), 8, 8, "JPEG") for n in names)
    doc = {"images": [{"id": 10 + k, "file_name": n} for k, n in enumerate(names)], "annotations": []}
    manifest = Manifest({"detection": store.put_blob(canonical_json(doc))}, entries)
    store.objects[manifest_key(manifest.content_hash())] = manifest.to_json()
    split = store.put_blob(canonical_json({"images/a.jpg": "train", "images/b.jpg": "val", "images/c.jpg": "train"}))
    return manifest.content_hash(), split


def test_the_split_s_images_with_their_ids_and_verified_bytes() -> None:
    store = FakeStore()
    content_hash, split = _snapshot(store)

    async def run() -> tuple[Any, Any, list[bytes | DatasetRejected]]:
        source = snapshots.source_of(store, content_hash, "s")
        train = await asyncio.to_thread(snapshots.images_of, source, split, "train")
        every = await asyncio.to_thread(snapshots.images_of, source, split, "all")
        store.objects[blob_key(hashlib.sha256(b"images/c.jpg").hexdigest())] = b"tampered"
        read = await asyncio.to_thread(snapshots.read_images, source, ["images/a.jpg", "images/c.jpg", "x.jpg"], 99)
        return train, every, read

    train, every, read = asyncio.run(run())
    assert (train.files, train.image_ids) == (["images/a.jpg", "images/c.jpg"], [10, 12])
    assert every.files == ["images/a.jpg", "images/b.jpg", "images/c.jpg"]
    assert read[0] == b"images/a.jpg"
    codes = [r.problems[0].code for r in read[1:] if isinstance(r, DatasetRejected)]
    assert codes == ["image_corrupt", "image_missing"]
    rows = [{"index": k, "file": n, "width": 8, "height": 8, "detections": []} for k, n in enumerate(train.files)]
    assert [i["id"] for i in coco_document(rows, {"0": "a"}, train.image_ids)["images"]] == [10, 12]
