"""Batch persistence (SQLAlchemy Core). API reads are project-scoped; worker writes are fenced by
(owner, attempt), so a worker that lost its lease changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_inference.adapters.orm_batches import batches
from vtp_inference.domain.batches import Batch, BatchStatus

_RUNNING = str(BatchStatus.RUNNING)


def _from_row(row: Any) -> Batch:
    values = dict(row._mapping)
    values["status"] = BatchStatus(values["status"])
    return Batch(**values)


class BatchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, batch: Batch) -> None:
        await self._session.execute(sa.insert(batches).values(**{**vars(batch), "status": str(batch.status)}))

    async def get(self, project_id: uuid.UUID, batch_id: uuid.UUID, *, lock: bool = False) -> Batch | None:
        query = sa.select(batches).where(batches.c.id == batch_id, batches.c.project_id == project_id)
        row = (await self._session.execute(query.with_for_update() if lock else query)).first()
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
        self, project_id: uuid.UUID, deployment_id: uuid.UUID, limit: int, status: str | None, kind: str | None = None
    ) -> list[Batch]:
        """Newest first; `kind`: only batches of that source kind (zip, snapshot)."""
        query = sa.select(batches).where(batches.c.project_id == project_id, batches.c.deployment_id == deployment_id)
        if status:
            query = query.where(batches.c.status == status)
        if kind:
            query = query.where(batches.c.source.op("->>")("kind") == kind)
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


def lease_end(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
