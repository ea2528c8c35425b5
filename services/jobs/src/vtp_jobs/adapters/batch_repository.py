"""Set-based job persistence for the event projection: a whole batch in a handful of statements.

Every method takes the rows of many jobs at once; ids travel as one array
parameter, so each statement is compiled once and its cost barely grows with
the batch. Changed jobs are written column by column, only what changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_jobs.adapters.orm import job_epochs, job_logs, jobs
from vtp_jobs.adapters.repository import job_from_row, row_values
from vtp_jobs.domain.model import Job, Status


@dataclass(frozen=True)
class JobHead:
    """The columns that decide whether a heartbeat or a log line applies, read without the whole job."""

    project_id: uuid.UUID
    attempt: int
    status: Status


@dataclass(frozen=True)
class Beat:
    """The latest accepted heartbeat of one job attempt in a batch."""

    job_id: uuid.UUID
    attempt: int
    runner_id: str
    sent_at: datetime


_UUIDS: ARRAY[Any] = ARRAY(UUID(as_uuid=True))


def _ids(job_ids: Iterable[uuid.UUID]) -> sa.BindParameter[Any]:
    """Job ids as one array parameter (`id = ANY(:ids)`): one statement whatever their number."""
    return sa.bindparam("ids", sorted(job_ids), type_=_UUIDS)


class JobBatchRepository:
    """Locks, loads and writes the jobs one batch of runner events touches, inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, job_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, JobHead]:
        """Lock the jobs' rows for the transaction (in id order, so concurrent batches cannot deadlock)."""
        if not job_ids:
            return {}
        stmt = (
            sa.select(jobs.c.id, jobs.c.project_id, jobs.c.attempt, jobs.c.status)
            .where(jobs.c.id == sa.any_(_ids(job_ids)))
            .order_by(jobs.c.id)
            .with_for_update()
        )
        rows = (await self._session.execute(stmt)).all()
        return {r.id: JobHead(r.project_id, r.attempt, Status(r.status)) for r in rows}

    async def load(self, job_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Job]:
        """Whole jobs (locked beforehand with :meth:`lock`)."""
        if not job_ids:
            return {}
        rows = (await self._session.execute(sa.select(jobs).where(jobs.c.id == sa.any_(_ids(job_ids))))).all()
        return {row.id: job_from_row(row) for row in rows}

    async def save_changed(self, changes: Iterable[tuple[dict[str, Any], Job]]) -> int:
        """Write the columns that differ from the `before` snapshot (see `row_values`); returns jobs written.

        Jobs that changed the same columns share one executemany (the usual case: every epoch
        changes the same few columns), so a batch costs a statement per shape, not per job.
        """
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for before, job in changes:
            after = row_values(job)
            changed = {k: v for k, v in after.items() if before.get(k) != v}
            if changed:
                shapes.setdefault(tuple(sorted(changed)), []).append({"_id": job.id, **changed})
        for params in shapes.values():
            await self._session.execute(sa.update(jobs).where(jobs.c.id == sa.bindparam("_id")), params)
        return sum(len(p) for p in shapes.values())

    async def add_epochs(self, rows: list[dict[str, Any]]) -> None:
        """Epoch metrics; one already recorded for its (job, attempt, epoch) is kept, never duplicated."""
        if rows:
            await self._session.execute(insert(job_epochs).on_conflict_do_nothing(), rows)

    async def add_logs(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self._session.execute(sa.insert(job_logs), rows)

    async def record_heartbeats(self, beats: Iterable[Beat]) -> None:
        """Stamp heartbeats; `GREATEST` keeps the newest, so replays and reordering never move time back.

        The attempt in the WHERE clause fences off a superseded runner even if a caller forgot to.
        """
        params = [{"_id": b.job_id, "_attempt": b.attempt, "_runner": b.runner_id, "_at": b.sent_at} for b in beats]
        if not params:
            return
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == sa.bindparam("_id"), jobs.c.attempt == sa.bindparam("_attempt"))
            .values(
                runner_id=sa.bindparam("_runner"),
                last_heartbeat_at=sa.func.greatest(
                    jobs.c.last_heartbeat_at, sa.bindparam("_at", type_=sa.DateTime(timezone=True))
                ),
            )
        )
        await self._session.execute(stmt, params)
