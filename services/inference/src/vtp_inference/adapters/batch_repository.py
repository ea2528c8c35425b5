"""Batch persistence (SQLAlchemy Core). API reads are scoped to their reader (a project, or an API
key and the keys it was rotated from); worker writes are fenced by (owner, attempt), so a worker
that lost its lease changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_inference.adapters.orm_batches import batches
from vtp_inference.adapters.orm_keys import api_keys
from vtp_inference.domain.batches import KEY_SOURCE, UNFINISHED_WORK, Batch, BatchStatus, Reader

_RUNNING = str(BatchStatus.RUNNING)


def _visible(reader: Reader, deployment_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    """The reader's batches of a deployment: all of a project's, or the zip batches of a key's lineage."""
    where = [batches.c.project_id == reader.project_id, batches.c.deployment_id == deployment_id]
    if reader.key_id is not None:  # the key, then every key rotated into it (a rotation keeps its batches)
        start = sa.select(sa.literal(reader.key_id, UUID(as_uuid=True)).label("id"))
        lineage = start.cte("key_lineage", recursive=True)
        earlier = sa.select(api_keys.c.id).where(
            api_keys.c.rotated_to == lineage.c.id, api_keys.c.project_id == reader.project_id
        )
        lineage = lineage.union(earlier)
        where += [batches.c.key_id.in_(sa.select(lineage.c.id)), batches.c.source.op("->>")("kind") == KEY_SOURCE]
    return where


def _from_row(row: Any) -> Batch:
    values = dict(row._mapping)
    values["status"] = BatchStatus(values["status"])
    return Batch(**values)


class BatchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, batch: Batch) -> None:
        await self._session.execute(sa.insert(batches).values(**{**vars(batch), "status": str(batch.status)}))

    async def get(
        self, reader: Reader, deployment_id: uuid.UUID, batch_id: uuid.UUID, *, lock: bool = False
    ) -> Batch | None:
        """The batch if `reader` may see it (None also for another project's or another key's)."""
        query = sa.select(batches).where(batches.c.id == batch_id, *_visible(reader, deployment_id))
        row = (await self._session.execute(query.with_for_update(of=batches) if lock else query)).first()
        return _from_row(row) if row else None

    async def held(self, batch_id: uuid.UUID, attempt: int, owner: str) -> Batch | None:
        """The batch if this worker still holds this attempt (locked for the update that follows)."""
        query = sa.select(batches).where(
            batches.c.id == batch_id,
            batches.c.attempt == attempt,
            batches.c.owner == owner,
            batches.c.status == _RUNNING,
        )
        row = (await self._session.execute(query.with_for_update())).first()
        return _from_row(row) if row else None

    async def of_deployment(
        self, reader: Reader, deployment_id: uuid.UUID, limit: int, status: str | None
    ) -> list[Batch]:
        """The batches of the deployment `reader` may see, newest first."""
        query = sa.select(batches).where(*_visible(reader, deployment_id))
        if status:
            query = query.where(batches.c.status == status)
        rows = await self._session.execute(query.order_by(batches.c.created_at.desc()).limit(limit))
        return [_from_row(r) for r in rows]

    async def claim(
        self, batch_id: uuid.UUID, attempt: int, owner: str, until: datetime, now: datetime
    ) -> Batch | None:
        """Queued attempt `attempt` becomes running under `owner`; None if it is not queued any more."""
        query = (
            sa.update(batches)
            .where(batches.c.id == batch_id, batches.c.attempt == attempt, batches.c.status == str(BatchStatus.QUEUED))
            .values(
                status=_RUNNING,
                owner=owner,
                lease_until=until,
                started_at=sa.func.coalesce(batches.c.started_at, now),
            )
            .returning(*batches.c)
        )
        row = (await self._session.execute(query)).first()
        return _from_row(row) if row else None

    async def renew(self, batch_id: uuid.UUID, attempt: int, owner: str, until: datetime) -> bool:
        query = (
            sa.update(batches)
            .where(
                batches.c.id == batch_id,
                batches.c.attempt == attempt,
                batches.c.owner == owner,
                batches.c.status == _RUNNING,
            )
            .values(lease_until=until)
        )
        return bool((await self._session.execute(query)).rowcount)  # type: ignore[attr-defined]

    async def save(self, batch: Batch) -> None:
        values = {k: v for k, v in vars(batch).items() if k not in ("id", "project_id", "created_at")}
        await self._session.execute(
            sa.update(batches).where(batches.c.id == batch.id).values(**{**values, "status": str(batch.status)})
        )

    async def expired(self, now: datetime, limit: int = 50) -> list[Batch]:
        """Running batches whose worker stopped renewing (locked, skipping those another replica handles)."""
        query = (
            sa.select(batches)
            .where(batches.c.status == _RUNNING, batches.c.lease_until < now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_from_row(r) for r in await self._session.execute(query)]

    async def owing(self, ids: list[uuid.UUID] | None = None, limit: int = 50) -> list[Batch]:
        """Ended batches that still owe their quotas images (`ids`: only these), locked, skipping
        those another replica is giving back."""
        query = sa.select(batches).where(
            batches.c.quota_owed > 0, batches.c.status.in_([str(s) for s in UNFINISHED_WORK])
        )
        if ids is not None:
            query = query.where(batches.c.id.in_(ids))
        return [_from_row(r) for r in await self._session.execute(query.limit(limit).with_for_update(skip_locked=True))]

    async def returned(self, batch_id: uuid.UUID, images: int) -> None:
        """The owed images were given back (`images` of them to a window still current)."""
        await self._session.execute(
            sa.update(batches)
            .where(batches.c.id == batch_id, batches.c.quota_owed > 0)
            .values(quota_owed=0, quota_returned=images)
        )


def lease_end(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
