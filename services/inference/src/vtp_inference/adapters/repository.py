"""Deployment persistence on PostgreSQL (SQLAlchemy Core); every API read is project-scoped."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_inference.adapters.orm import deployments
from vtp_inference.domain.model import Deployment, NameTaken, Status

_LIVE = deployments.c.deleted_at.is_(None)


def _from_row(row: Any) -> Deployment:
    values = dict(row._mapping)
    values["status"] = Status(values["status"])
    return Deployment(**values)


class DeploymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, deployment: Deployment) -> None:
        try:
            async with self._session.begin_nested():
                values = {**vars(deployment), "status": str(deployment.status)}
                await self._session.execute(sa.insert(deployments).values(**values))
        except IntegrityError as exc:  # the partial unique index on (project, name)
            raise NameTaken(deployment.name) from exc

    async def save(self, deployment: Deployment) -> None:
        values = {k: v for k, v in vars(deployment).items() if k not in ("id", "project_id", "created_at")}
        values["status"] = str(deployment.status)
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    sa.update(deployments).where(deployments.c.id == deployment.id).values(**values)
                )
        except IntegrityError as exc:
            raise NameTaken(deployment.name) from exc

    async def get(self, project_id: uuid.UUID, deployment_id: uuid.UUID, *, lock: bool = False) -> Deployment | None:
        stmt = sa.select(deployments).where(
            deployments.c.id == deployment_id, deployments.c.project_id == project_id, _LIVE
        )
        row = (await self._session.execute(stmt.with_for_update() if lock else stmt)).first()
        return _from_row(row) if row else None

    async def by_name(self, project_id: uuid.UUID, name: str) -> Deployment | None:
        stmt = sa.select(deployments).where(deployments.c.name == name, deployments.c.project_id == project_id, _LIVE)
        row = (await self._session.execute(stmt)).first()
        return _from_row(row) if row else None

    async def search(
        self, project_id: uuid.UUID, status: str | None, limit: int, offset: int
    ) -> tuple[list[Deployment], int]:
        where: list[Any] = [deployments.c.project_id == project_id, _LIVE]
        if status is not None:
            where.append(deployments.c.status == status)
        count = sa.select(sa.func.count()).select_from(deployments).where(*where)
        total = (await self._session.execute(count)).scalar()
        stmt = (
            sa.select(deployments)
            .where(*where)
            .order_by(deployments.c.created_at.desc(), deployments.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [_from_row(r) for r in (await self._session.execute(stmt)).all()], int(total or 0)

    async def stale_creating(self, before: datetime, limit: int = 50) -> list[Deployment]:
        """Deployments whose creating replica died mid-way, locked for failing them."""
        stmt = (
            sa.select(deployments)
            .where(deployments.c.status == "creating", deployments.c.updated_at < before, _LIVE)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_from_row(r) for r in (await self._session.execute(stmt)).all()]

    async def referencing(self, deployment_id: uuid.UUID, uris: Collection[str]) -> list[Deployment]:
        """The live deployment `deployment_id` and every live deployment whose models name one of `uris`."""
        found: list[Any] = [deployments.c.id == deployment_id]
        for column, head in ((deployments.c.model, ()), (deployments.c.previous, ("model",)),
                             (deployments.c.canary, ("model",))):  # fmt: skip
            for tail in (("uri",), ("weights", "uri")):
                found.append(column[(*head, *tail)].astext.in_(list(uris)))
        stmt = sa.select(deployments).where(_LIVE, sa.or_(*found))
        return [_from_row(r) for r in (await self._session.execute(stmt)).all()]

    async def live(self) -> list[Deployment]:
        """Every live deployment of every project (the orphan sweep's view of what is referenced)."""
        return [_from_row(r) for r in (await self._session.execute(sa.select(deployments).where(_LIVE))).all()]
