"""Usage on PostgreSQL: a flush is one transaction that applies its batch once, or not at all.

The batch's (replica_id, seq) row is inserted first; if it is already there the batch was applied
before (a retry after a lost commit acknowledgement) and nothing else is written. Otherwise every
minute, hour and day cell is upserted additively (counts added, JSON maps merged key by key by
`usage_add_counts`), rows in one sorted order so concurrent replicas never deadlock each other.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_inference.adapters.orm_usage import usage_buckets, usage_flushes
from vtp_inference.domain.usage import GRANULARITIES, Batch, Cell, CellKey, Granularity

NO_KEY = uuid.UUID(int=0)
CHUNK = 1000  # rows per INSERT: 11 parameters each, under asyncpg's 32,767
_ADDED = ("requests", "images", "compute_seconds", "bytes_in")
_MERGED = ("errors", "latency")


def _row(granularity: Granularity, key: CellKey, cell: Cell) -> dict[str, Any]:
    return {
        "granularity": str(granularity),
        "project_id": key.project_id,
        "deployment_id": key.deployment_id,
        "key_id": key.key_id or NO_KEY,
        "bucket_start": key.start,
        "requests": cell.requests,
        "images": cell.images,
        "errors": cell.errors,
        "latency": {str(b): n for b, n in cell.latency.items()},
        "compute_seconds": cell.compute_seconds,
        "bytes_in": cell.bytes_in,
    }


def _cell(row: Any) -> tuple[CellKey, Cell]:
    key_id = None if row.key_id == NO_KEY else row.key_id
    key = CellKey(row.bucket_start, row.project_id, row.deployment_id, key_id)
    cell = Cell(
        requests=row.requests,
        images=row.images,
        errors={str(k): int(v) for k, v in row.errors.items()},
        latency={int(k): int(v) for k, v in row.latency.items()},
        compute_seconds=row.compute_seconds,
        bytes_in=row.bytes_in,
    )
    return key, cell


def _upsert(rows: list[dict[str, Any]]) -> Any:
    stmt = insert(usage_buckets).values(rows)
    new, old = stmt.excluded, usage_buckets.c
    changes: dict[str, Any] = {c: old[c] + new[c] for c in _ADDED}
    changes.update({c: sa.func.usage_add_counts(old[c], new[c]) for c in _MERGED})
    return stmt.on_conflict_do_update(index_elements=list(usage_buckets.primary_key.columns), set_=changes)


class PostgresUsageStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def apply(self, batch: Batch) -> bool:
        """Apply `batch` once: True when written now, False when it had been applied already."""
        async with self._sessions() as session, session.begin():
            claim = insert(usage_flushes).values(
                replica_id=batch.replica_id, seq=batch.seq, cells=len(batch.cells), applied_at=datetime.now(UTC)
            )
            claimed = await session.execute(claim.on_conflict_do_nothing().returning(usage_flushes.c.seq))
            if claimed.first() is None:
                return False
            for granularity in GRANULARITIES:
                cells = batch.rollup(granularity)
                rows = [_row(granularity, k, cells[k]) for k in sorted(cells, key=CellKey.sort_key)]
                for i in range(0, len(rows), CHUNK):
                    await session.execute(_upsert(rows[i : i + CHUNK]))
        return True

    async def read(
        self,
        project_id: uuid.UUID,
        granularity: Granularity,
        start: datetime,
        end: datetime,
        deployment_id: uuid.UUID | None = None,
        key_id: uuid.UUID | None = None,
    ) -> list[tuple[CellKey, Cell]]:
        """The project's cells with a start in [start, end), optionally of one deployment or key."""
        c = usage_buckets.c
        stmt = sa.select(usage_buckets).where(
            c.granularity == str(granularity), c.project_id == project_id, c.bucket_start >= start, c.bucket_start < end
        )
        if deployment_id is not None:
            stmt = stmt.where(c.deployment_id == deployment_id)
        if key_id is not None:
            stmt = stmt.where(c.key_id == key_id)
        async with self._sessions() as session:
            rows = (await session.execute(stmt.order_by(c.bucket_start))).all()
        return [_cell(r) for r in rows]

    async def prune(self, minutes_older_than: timedelta, flushes_older_than: timedelta) -> None:
        """Drop minute cells and flush records past their retention (hours and days stay)."""
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            minutes = usage_buckets.c.granularity == str(Granularity.MINUTE)
            old = usage_buckets.c.bucket_start < now - minutes_older_than
            await session.execute(sa.delete(usage_buckets).where(minutes, old))
            await session.execute(sa.delete(usage_flushes).where(usage_flushes.c.applied_at < now - flushes_older_than))
