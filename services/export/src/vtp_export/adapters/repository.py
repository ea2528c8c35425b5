"""Export persistence on PostgreSQL (SQLAlchemy Core): API reads are project-scoped, workers fence by attempt."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_export.adapters.orm import exports
from vtp_export.domain.model import Export, Status

_LIVE = exports.c.deleted_at.is_(None)


def export_from_row(row: Any) -> Export:
    values = dict(row._mapping)
    values["status"] = Status(values["status"])
    return Export(**values)


class ExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_job(self, job_id: uuid.UUID) -> None:
        """Serialise creations per job: version numbers and content addressing stay race-free."""
        await self._session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(str(job_id)))))

    async def add(self, export: Export) -> None:
        await self._session.execute(sa.insert(exports).values(**{**vars(export), "status": str(export.status)}))

    async def save(self, export: Export) -> None:
        values = {k: v for k, v in vars(export).items() if k not in ("id", "project_id", "created_at")}
        values["status"] = str(export.status)
        await self._session.execute(sa.update(exports).where(exports.c.id == export.id).values(**values))

    async def by_content(self, project_id: uuid.UUID, key: str) -> Export | None:
        stmt = sa.select(exports).where(
            exports.c.project_id == project_id, exports.c.content_key == key, _LIVE, exports.c.status != "failed"
        )
        row = (await self._session.execute(stmt)).first()
        return export_from_row(row) if row else None

    async def next_version(self, job_id: uuid.UUID) -> int:
        """Versions are never reused, deleted exports included."""
        current = (
            await self._session.execute(sa.select(sa.func.max(exports.c.version)).where(exports.c.job_id == job_id))
        ).scalar()
        return int(current or 0) + 1

    async def get(self, project_id: uuid.UUID, export_id: uuid.UUID, *, lock: bool = False) -> Export | None:
        stmt = sa.select(exports).where(exports.c.id == export_id, exports.c.project_id == project_id, _LIVE)
        row = (await self._session.execute(stmt.with_for_update() if lock else stmt)).first()
        return export_from_row(row) if row else None

    async def get_by_id(self, export_id: uuid.UUID, *, lock: bool = False) -> Export | None:
        """For the worker: any live export by id."""
        stmt = sa.select(exports).where(exports.c.id == export_id, _LIVE)
        row = (await self._session.execute(stmt.with_for_update() if lock else stmt)).first()
        return export_from_row(row) if row else None

    async def default_of(self, job_id: uuid.UUID) -> Export | None:
        stmt = sa.select(exports).where(exports.c.job_id == job_id, exports.c.is_default, _LIVE)
        row = (await self._session.execute(stmt)).first()
        return export_from_row(row) if row else None

    async def clear_default(self, job_id: uuid.UUID) -> None:
        await self._session.execute(
            sa.update(exports).where(exports.c.job_id == job_id, exports.c.is_default).values(is_default=False)
        )

    async def search(
        self,
        project_id: uuid.UUID,
        job_id: uuid.UUID | None,
        fmt: str | None,
        status: str | None,
        default: bool | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Export], int]:
        where: list[Any] = [exports.c.project_id == project_id, _LIVE]
        if job_id is not None:
            where.append(exports.c.job_id == job_id)
        if fmt is not None:
            where.append(exports.c.format == fmt)
        if status is not None:
            where.append(exports.c.status == status)
        if default is not None:
            where.append(exports.c.is_default.is_(default))
        total = (await self._session.execute(sa.select(sa.func.count()).select_from(exports).where(*where))).scalar()
        stmt = (
            sa.select(exports)
            .where(*where)
            .order_by(exports.c.created_at.desc(), exports.c.id)
            .limit(limit)
            .offset(offset)
        )
        rows = (await self._session.execute(stmt)).all()
        return [export_from_row(r) for r in rows], int(total or 0)

    async def claim(
        self, export_id: uuid.UUID, attempt: int, owner: str, lease: timedelta, now: datetime
    ) -> Export | None:
        """Take a queued attempt for this worker; None when it is not (any more) this attempt's turn."""
        stmt = (
            sa.update(exports)
            .where(exports.c.id == export_id, exports.c.attempt == attempt, exports.c.status == "queued", _LIVE)
            .values(
                status="running",
                stage=None,
                lease_owner=owner,
                lease_expires_at=now + lease,
                started_at=sa.func.coalesce(exports.c.started_at, now),
            )
            .returning(*exports.c)
        )
        row = (await self._session.execute(stmt)).first()
        return export_from_row(row) if row else None

    async def held(self, export_id: uuid.UUID, attempt: int, owner: str, *, lock: bool = True) -> Export | None:
        """The export while this worker still holds this attempt (not deleted, not taken over)."""
        stmt = sa.select(exports).where(
            exports.c.id == export_id,
            exports.c.attempt == attempt,
            exports.c.lease_owner == owner,
            exports.c.status == "running",
            _LIVE,
        )
        row = (await self._session.execute(stmt.with_for_update() if lock else stmt)).first()
        return export_from_row(row) if row else None

    async def renew(self, export_id: uuid.UUID, attempt: int, owner: str, until: datetime) -> bool:
        """Extend the lease; False when the attempt is no longer ours (deleted, requeued, finished)."""
        stmt = (
            sa.update(exports)
            .where(
                exports.c.id == export_id,
                exports.c.attempt == attempt,
                exports.c.lease_owner == owner,
                exports.c.status == "running",
                _LIVE,
            )
            .values(lease_expires_at=until)
        )
        result = await self._session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def expired(self, now: datetime, limit: int = 50) -> list[Export]:
        """Running exports whose worker stopped renewing its lease, locked for requeueing."""
        stmt = (
            sa.select(exports)
            .where(exports.c.status == "running", exports.c.lease_expires_at < now, _LIVE)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [export_from_row(r) for r in (await self._session.execute(stmt)).all()]
