"""API keys and per-deployment limits on PostgreSQL (SQLAlchemy Core); API reads are project-scoped."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_inference.adapters.orm_keys import api_keys, deployment_limits
from vtp_inference.domain.keys import ApiKey, Limits


def _row(key: ApiKey) -> dict[str, Any]:
    values = dict(vars(key))
    values["scopes"] = sorted(key.scopes)
    values["deployments"] = None if key.deployments is None else sorted(str(d) for d in key.deployments)
    values["limits"] = key.limits.as_dict()
    return values


def _key(row: Any) -> ApiKey:
    values = dict(row._mapping)
    values["scopes"] = frozenset(values["scopes"])
    found = values["deployments"]
    values["deployments"] = None if found is None else frozenset(uuid.UUID(d) for d in found)
    values["limits"] = Limits(**values["limits"])
    return ApiKey(**values)


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, key: ApiKey) -> None:
        await self._session.execute(sa.insert(api_keys).values(**_row(key)))

    async def save(self, key: ApiKey) -> None:
        values = {k: v for k, v in _row(key).items() if k not in ("id", "project_id", "created_at", "key_hash")}
        await self._session.execute(sa.update(api_keys).where(api_keys.c.id == key.id).values(**values))

    async def get(self, project_id: uuid.UUID, key_id: uuid.UUID, *, lock: bool = False) -> ApiKey | None:
        stmt = sa.select(api_keys).where(api_keys.c.id == key_id, api_keys.c.project_id == project_id)
        row = (await self._session.execute(stmt.with_for_update() if lock else stmt)).first()
        return _key(row) if row else None

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this digest, in any project (authentication)."""
        row = (await self._session.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
        return _key(row) if row else None

    async def search(
        self, project_id: uuid.UUID, deployment_id: uuid.UUID | None, limit: int, offset: int
    ) -> tuple[list[ApiKey], int]:
        """The project's keys, newest first; with `deployment_id`, those that reach it (project-wide ones too)."""
        where = api_keys.c.project_id == project_id
        if deployment_id is not None:
            reaches = api_keys.c.deployments.contains(sa.cast([str(deployment_id)], JSONB))
            where = sa.and_(where, sa.or_(api_keys.c.deployments.is_(None), reaches))
        total = (await self._session.execute(sa.select(sa.func.count()).select_from(api_keys).where(where))).scalar()
        stmt = sa.select(api_keys).where(where).order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        rows = (await self._session.execute(stmt.limit(limit).offset(offset))).all()
        return [_key(r) for r in rows], int(total or 0)

    async def touch(self, last_used: dict[uuid.UUID, datetime]) -> None:
        """Record when keys were last used: one statement for a whole batch, never moving backwards."""
        if not last_used:
            return
        stamps = sa.values(sa.column("id", sa.Uuid), sa.column("at", sa.DateTime(timezone=True)), name="stamps")
        stamps = stamps.data(list(last_used.items()))
        stmt = (
            sa.update(api_keys)
            .where(api_keys.c.id == stamps.c.id)
            .values(last_used_at=sa.func.greatest(sa.func.coalesce(api_keys.c.last_used_at, stamps.c.at), stamps.c.at))
        )
        await self._session.execute(stmt)

    async def limits_of(self, deployment_id: uuid.UUID) -> Limits | None:
        stmt = sa.select(deployment_limits.c.limits).where(deployment_limits.c.deployment_id == deployment_id)
        found = (await self._session.execute(stmt)).scalar()
        return Limits(**found) if found is not None else None

    async def set_limits(self, project_id: uuid.UUID, deployment_id: uuid.UUID, limits: Limits, now: datetime) -> None:
        values = {
            "deployment_id": deployment_id,
            "project_id": project_id,
            "limits": limits.as_dict(),
            "updated_at": now,
        }
        stmt = insert(deployment_limits).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[deployment_limits.c.deployment_id], set_={"limits": stmt.excluded.limits, "updated_at": now}
        )
        await self._session.execute(stmt)


class SqlAccessStore:
    """What the per-request access checks read and write, each in its own short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        async with self._sessions() as session:
            return await KeyRepository(session).by_hash(key_hash)

    async def limits_of(self, deployment_id: uuid.UUID) -> Limits | None:
        async with self._sessions() as session:
            return await KeyRepository(session).limits_of(deployment_id)

    async def touch(self, last_used: dict[uuid.UUID, datetime]) -> None:
        async with self._sessions() as session, session.begin():
            await KeyRepository(session).touch(last_used)
