"""Orphan blobs: content-addressed objects no version or snapshot references, swept when old enough.

Blobs are stored before the rows that reference them commit, so a failed commit (or a crash)
leaves orphans. The sweep deletes a blob only when it is older than the grace period, is not
referenced, and is not leased. Uploads lease every key they write or reuse *before* checking or
storing it and drop the lease after their rows commit; the lease and the sweep serialise on one
advisory lock (adapters/leases.py), so a sweep sees either the lease or the committed rows, or
else finishes before the lease exists and the upload re-checks its blobs after taking it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.service_layer.unit_of_work import DatasetsUnitOfWork
from vtp_dice.manifest import blob_key, manifest_key

_log = logging.getLogger(__name__)
NewUow = Callable[[], DatasetsUnitOfWork]


@asynccontextmanager
async def blob_lease(new_uow: NewUow, keys: list[str]) -> AsyncIterator[None]:
    """Keep `keys` from the sweep inside the block; commit the rows referencing them before leaving it."""
    lease_id = uuid.uuid4()
    async with new_uow() as uow:
        await uow.leases.take(lease_id, keys, datetime.now(UTC))
        await uow.commit()
    try:
        yield
    finally:
        # If this fails, the lease simply expires with the grace period.
        async with new_uow() as uow:
            await uow.leases.release(lease_id)
            await uow.commit()


class References:
    """Keys referenced by committed versions and snapshots; manifests are immutable, so each is read once."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self._seen: set[str] = set()
        self.keys: set[str] = set()

    async def update(self, uow: DatasetsUnitOfWork) -> None:
        """Add what `uow` sees now. A manifest that cannot be read raises: nothing is deleted then."""
        content, splits = await uow.leases.content_references()
        self.keys.update(blob_key(sha) for sha in splits)
        for content_hash in content - self._seen:
            manifest = await self._blobs.manifest(content_hash)
            self.keys.add(manifest_key(content_hash))
            self.keys.update(blob_key(sha) for sha in manifest.annotations.values())
            self.keys.update(blob_key(image.sha256) for image in manifest.images)
            if manifest.metadata:
                self.keys.add(blob_key(manifest.metadata))
            self._seen.add(content_hash)


async def sweep_orphans(
    new_uow: NewUow, blobs: BlobStore, grace: timedelta, lease_ttl: timedelta | None = None
) -> int | None:
    """Delete unreferenced, unleased blobs and manifests older than `grace`; None when another replica sweeps.

    Leases older than `lease_ttl` (default: `grace`) belong to dead uploads: ignored, then dropped.
    """
    now = datetime.now(UTC)
    old = [key for key, modified in await blobs.list_content() if modified < now - grace]
    references = References(blobs)
    async with new_uow() as uow:  # most manifests are read here, outside the lock
        await references.update(uow)
    async with new_uow() as uow:
        if not await uow.leases.try_lock_sweep():
            return None
        # Leases first, then references: an upload drops its lease only after its rows commit.
        leased = await uow.leases.leased_keys(now - (lease_ttl or grace))
        await references.update(uow)
        orphans = [key for key in old if key not in references.keys and key not in leased]
        for key in orphans:
            await blobs.delete_key(key)
        await uow.leases.drop_expired(now - (lease_ttl or grace))
        await uow.commit()
    if orphans:
        _log.info("deleted %d orphan blobs older than %s", len(orphans), grace)
    return len(orphans)
