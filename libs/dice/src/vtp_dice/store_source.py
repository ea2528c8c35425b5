"""A dataset snapshot read straight from object storage, for `vtp_dice.materialize`.

The datasets service stores every snapshot content-addressed (manifest and blobs by
SHA-256) in the bucket that trainers and exporters also use, so a worker needs no
credentials of any project: its command carries the content hash. `materialize` is
synchronous and runs in a worker thread; blob reads hop back onto the event loop,
which owns the async object store. Every blob is verified by its SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from vtp_dice.format import Task
from vtp_dice.manifest import Manifest, blob_key, manifest_key


class BlobReader(Protocol):
    """What this reader needs of an object store (`vtp_runtime.storage.ObjectStore` has it)."""

    def open_stream(self, key: str) -> AsyncIterator[bytes]: ...

    async def get_file(self, key: str, dest: Path) -> Any: ...


class StoreSnapshotSource:
    def __init__(self, store: BlobReader, content_hash: str, snapshot_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self._store, self._hash, self._id, self._loop = store, content_hash, snapshot_id, loop
        self._manifest: Manifest | None = None

    @property
    def snapshot_id(self) -> str:
        return self._id

    @property
    def content_hash(self) -> str:
        return self._hash

    def _read(self, key: str) -> bytes:
        async def read() -> bytes:
            return b"".join([chunk async for chunk in self._store.open_stream(key)])

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result()

    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.from_json(self._read(manifest_key(self._hash)))
        return self._manifest

    def annotation_doc(self, task: Task) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.blob(self.manifest().annotations[task]))
        return doc

    def blob(self, sha256: str) -> bytes:
        data = self._read(blob_key(sha256))
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"blob {sha256} failed verification")
        return data

    def fetch_blob(self, sha256: str, dest: Path) -> None:
        asyncio.run_coroutine_threadsafe(self._store.get_file(blob_key(sha256), dest), self._loop).result()
        with dest.open("rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != sha256:
                dest.unlink()
                raise ValueError(f"blob {sha256} failed verification")
