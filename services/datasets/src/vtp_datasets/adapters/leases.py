"""Blob leases and the sweep lock on PostgreSQL: what keeps the orphan sweep off in-flight uploads.

One advisory lock: uploads take it shared (only while they record a lease), the sweep exclusive
(for its whole check-and-delete). So a lease is either visible to a sweep, or recorded after
that sweep finished deleting, and then the upload checks its blobs again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_datasets.adapters.orm import blob_leases, dataset_versions, snapshots

# Any fixed bigints, the same in every replica ("vtpblobs", "vtpsweep" in ASCII).
SWEEP_LOCK = 0x767470626C6F6273
SWEEPER_LOCK = 0x7674707377656570


class LeaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def take(self, lease_id: uuid.UUID, keys: list[str], now: datetime) -> None:
        """Record a lease; waits while a sweep holds the lock (released when the transaction ends)."""
        await self._session.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": SWEEP_LOCK})
        await self._session.execute(sa.insert(blob_leases).values(id=lease_id, created_at=now, object_keys=keys))

    async def release(self, lease_id: uuid.UUID) -> None:
        await self._session.execute(sa.delete(blob_leases).where(blob_leases.c.id == lease_id))

    async def try_lock_sweep(self) -> bool:
        """The sweep lock for this transaction; False at once when another replica is sweeping.

        Then waits (briefly) for uploads recording leases right now, and holds off new ones.
        """
        if not await self._session.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEPER_LOCK}):
            return False
        await self._session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK})
        return True

    async def leased_keys(self, since: datetime) -> set[str]:
        """Keys of leases taken since `since` (older ones belong to uploads that died)."""
        stmt = sa.select(sa.func.unnest(blob_leases.c.object_keys)).where(blob_leases.c.created_at >= since)
        return set((await self._session.scalars(stmt)).all())

    async def drop_expired(self, before: datetime) -> None:
        await self._session.execute(sa.delete(blob_leases).where(blob_leases.c.created_at < before))

    async def content_references(self) -> tuple[set[str], set[str]]:
        """(content hashes of every version and snapshot, split fingerprints of every snapshot).

        Soft-deleted datasets count: their snapshots stay readable.
        """
        hashes = sa.union(sa.select(dataset_versions.c.content_hash), sa.select(snapshots.c.content_hash))
        content = set((await self._session.scalars(sa.select(hashes.subquery().c[0]))).all())
        splits = set((await self._session.scalars(sa.select(snapshots.c.split_fingerprint).distinct())).all())
        return content, splits
