"""Content-addressed blobs on the object store: images, annotation files, manifests.

A blob's key is its SHA-256, so the same bytes are stored once however many
datasets and snapshots use them, and a snapshot copies no bytes at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from vtp_datasets.adapters.staged_blobs import StagedBlobs
from vtp_dice.format import canonical_json
from vtp_dice.manifest import Manifest, blob_key, manifest_key
from vtp_runtime.storage import ObjectNotFound, ObjectStore

# Every content-addressed key lives under one of these: what the orphan sweep looks at.
CONTENT_PREFIXES = ("blobs/sha256/", "manifests/")


class BlobStore:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def staging(self) -> StagedBlobs:
        # No sidecars: a blob's key is its hash already, and one file per image instead of two is
        # much of what an import of thousands of small images costs.
        return StagedBlobs(self._store.staging(sidecars=False))

    async def list_content(self) -> list[tuple[str, datetime]]:
        """Every content-addressed key (blobs and manifests) with its last-modified time."""
        return [item for prefix in CONTENT_PREFIXES for item in await self._store.list_modified(prefix)]

    async def delete_key(self, key: str) -> None:
        await self._store.delete(key)

    async def has(self, sha256: str) -> bool:
        return await self._store.exists(blob_key(sha256))

    async def put(self, sha256: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Store bytes under their digest; False when they were already there."""
        if await self.has(sha256):
            return False
        await self._store.put_bytes(blob_key(sha256), data, content_type)
        return True

    async def put_many(self, items: Sequence[tuple[str, Callable[[], bytes]]], workers: int = 4) -> int:
        """Store many blobs (sha256, bytes producer), skipping those already stored; returns how many were new."""
        return await self._store.put_many([(blob_key(sha), read) for sha, read in items], workers=workers)

    async def put_json(self, doc: Any) -> tuple[str, bool]:
        """Store a JSON document in canonical form; returns (sha256, newly stored)."""
        data = canonical_json(doc)
        sha = hashlib.sha256(data).hexdigest()
        return sha, await self.put(sha, data, "application/json")

    async def get(self, sha256: str) -> bytes:
        return b"".join([chunk async for chunk in self._store.open_stream(blob_key(sha256))])

    async def get_json(self, sha256: str) -> Any:
        return json.loads(await self.get(sha256))

    def stream(self, sha256: str) -> AsyncIterator[bytes]:
        return self._store.open_stream(blob_key(sha256))

    async def fetch_to(self, sha256: str, dest: Path) -> None:
        await self._store.get_file(blob_key(sha256), dest)

    async def sync(self) -> None:
        """Durability barrier: every blob written so far survives a crash once this returns."""
        await self._store.sync()

    async def delete(self, sha256: str) -> None:
        await self._store.delete(blob_key(sha256))

    async def put_manifest(self, manifest: Manifest) -> bool:
        key = manifest_key(manifest.content_hash())
        if await self._store.exists(key):
            return False
        await self._store.put_bytes(key, manifest.to_json(), "application/json")
        return True

    async def manifest(self, content_hash: str) -> Manifest:
        data = b"".join([c async for c in self._store.open_stream(manifest_key(content_hash))])
        return Manifest.from_json(data)

    async def delete_manifest(self, content_hash: str) -> None:
        await self._store.delete(manifest_key(content_hash))


__all__ = ["BlobStore", "ObjectNotFound"]
