"""Images staged during validation on the local store: invisible until published, gone when discarded."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from vtp_datasets.adapters.blobs import BlobStore
from vtp_dice.manifest import ImageEntry, blob_key
from vtp_runtime.storage import LocalObjectStore


def _entry(data: bytes) -> ImageEntry:
    return ImageEntry("a.jpg", hashlib.sha256(data).hexdigest(), len(data), 1, 1, "JPEG")


def _staged_files(root: Path) -> list[Path]:
    return [p for p in (root / ".vtp-tmp").glob("*")] if (root / ".vtp-tmp").exists() else []


def test_staged_blobs_appear_only_when_published(tmp_path: Path):
    store = LocalObjectStore(tmp_path, "bucket", sync_each_write=False)
    staged = BlobStore(store).staging()
    images = [bytes([i]) * 1000 for i in range(5)]

    async def main() -> set[str]:
        for data in images:
            staged.offer(_entry(data), data)
        await asyncio.sleep(0.1)  # let the writer thread stage them
        assert await store.list_keys("") == []
        return await staged.publish()

    published = asyncio.run(main())
    keys = {blob_key(_entry(data).sha256) for data in images}
    assert published == keys
    assert set(asyncio.run(store.list_keys(""))) == keys
    assert asyncio.run(BlobStore(store).get(_entry(images[0]).sha256)) == images[0]
    assert _staged_files(tmp_path) == []


def test_discarded_staging_leaves_nothing(tmp_path: Path):
    store = LocalObjectStore(tmp_path, "bucket", sync_each_write=False)
    staged = BlobStore(store).staging()

    async def main() -> None:
        for i in range(50):
            data = bytes([i]) * 5000
            staged.offer(_entry(data), data)
        await staged.discard()

    asyncio.run(main())
    assert asyncio.run(store.list_keys("")) == []
    assert _staged_files(tmp_path) == []


def test_existing_blobs_are_not_staged_again(tmp_path: Path):
    store = LocalObjectStore(tmp_path, "bucket", sync_each_write=False)
    data = b"x" * 100
    asyncio.run(store.put_bytes(blob_key(_entry(data).sha256), data))
    staged = BlobStore(store).staging()

    async def main() -> set[str]:
        staged.offer(_entry(data), data)
        return await staged.publish()

    assert asyncio.run(main()) == set()
