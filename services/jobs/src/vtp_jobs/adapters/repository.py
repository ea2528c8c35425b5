"""Job persistence on PostgreSQL (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_jobs.adapters.commands import ResendOutcome, resend_requested
from vtp_jobs.adapters.orm import job_epochs, job_logs, jobs
from vtp_jobs.domain.model import Job, Status

_IMMUTABLE = ("id", "project_id", "created_at")


def job_from_row(row: Any) -> Job:
    values = dict(row._mapping)
    values["status"] = Status(values["status"])
    return Job(**values)


def row_values(job: Job) -> dict[str, Any]:
    """The job's updatable columns; dicts are copied, so this doubles as a snapshot to diff against later."""
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in vars(job).items() if k not in _IMMUTABLE}
    values["status"] = str(job.status)
    return values


class JobRepository:
    """Reads for API callers are scoped to a project; event handlers look jobs up by id."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, job: Job) -> None:
        await self._session.execute(sa.insert(jobs).values(**{**vars(job), "status": str(job.status)}))

    async def save(self, job: Job) -> None:
        await self._session.execute(sa.update(jobs).where(jobs.c.id == job.id).values(**row_values(job)))

    async def get(self, project_id: uuid.UUID, job_id: uuid.UUID, *, lock: bool = False) -> Job | None:
        stmt = sa.select(jobs).where(jobs.c.id == job_id, jobs.c.project_id == project_id)
        row = (await self._session.execute(stmt.with_for_update() if lock else stmt)).first()
        return job_from_row(row) if row else None

    async def lock(self, job_id: uuid.UUID) -> Job | None:
        """The job an event is about, locked for the rest of the transaction."""
        row = (await self._session.execute(sa.select(jobs).where(jobs.c.id == job_id).with_for_update())).first()
        return job_from_row(row) if row else None

    async def search(
        self, project_id: uuid.UUID, status: str | None, dataset_id: uuid.UUID | None, limit: int, offset: int
    ) -> tuple[list[Job], int]:
        where: list[Any] = [jobs.c.project_id == project_id]
        if status:
            where.append(jobs.c.status == status)
        if dataset_id:
            where.append(jobs.c.dataset_id == dataset_id)
        total = await self._session.scalar(sa.select(sa.func.count()).select_from(jobs).where(*where))
        stmt = sa.select(jobs).where(*where).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit).offset(offset)
        return [job_from_row(r) for r in (await self._session.execute(stmt)).all()], int(total or 0)

    async def add_epoch(self, job_id: uuid.UUID, attempt: int, epoch: int, values: dict[str, Any]) -> bool:
        """Record one epoch's metrics; False when this attempt's epoch was already recorded."""
        stmt = (
            insert(job_epochs)
            .values(job_id=job_id, attempt=attempt, epoch=epoch, **values)
            .on_conflict_do_nothing()
            .returning(job_epochs.c.epoch)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def epochs(self, job_id: uuid.UUID) -> list[dict[str, Any]]:
        stmt = (
            sa.select(job_epochs)
            .where(job_epochs.c.job_id == job_id)
            .order_by(job_epochs.c.attempt, job_epochs.c.epoch)
        )
        return [dict(r._mapping) for r in (await self._session.execute(stmt)).all()]

    async def add_logs(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self._session.execute(sa.insert(job_logs), rows)

    async def logs(
        self,
        job_id: uuid.UUID,
        level: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        where: list[Any] = [job_logs.c.job_id == job_id]
        if level:
            where.append(job_logs.c.level == level)
        if since:
            where.append(job_logs.c.time >= since)
        if until:
            where.append(job_logs.c.time < until)
        stmt = sa.select(job_logs).where(*where).order_by(job_logs.c.time, job_logs.c.id).limit(limit).offset(offset)
        return [dict(r._mapping) for r in (await self._session.execute(stmt)).all()]

    async def queued_untaken_since(self, cutoff: datetime, limit: int = 100) -> list[uuid.UUID]:
        """Queued jobs handed to the runners before `cutoff` that no runner has been heard about since."""
        stmt = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.status == str(Status.QUEUED),
                jobs.c.queued_at < cutoff,
                sa.or_(jobs.c.last_heartbeat_at.is_(None), jobs.c.last_heartbeat_at < cutoff),
            )
            .order_by(jobs.c.queued_at)
            .limit(limit)
        )
        return list((await self._session.scalars(stmt)).all())

    async def resend_requested(self, job_id: uuid.UUID, attempt: int, sent_before: datetime) -> ResendOutcome:
        """Send the attempt's `job.requested` again through the outbox (see adapters.commands)."""
        return await resend_requested(self._session, job_id, attempt, sent_before)

    async def silent_since(self, cutoff: datetime, limit: int = 100) -> list[uuid.UUID]:
        """Running jobs whose runner has not been heard from since `cutoff`."""
        stmt = (
            sa.select(jobs.c.id)
            .where(jobs.c.status == str(Status.RUNNING), jobs.c.last_heartbeat_at < cutoff)
            .limit(limit)
        )
        return list((await self._session.scalars(stmt)).all())
