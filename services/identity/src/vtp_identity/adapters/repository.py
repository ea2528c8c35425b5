"""Project and token persistence on PostgreSQL (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_identity.adapters.orm import api_tokens, projects
from vtp_identity.domain.model import ApiToken, Project, ProjectSlugTaken


class IdentityRepository:
    """Reads and writes projects and tokens inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_project(self, project: Project) -> None:
        try:
            async with self._session.begin_nested():
                await self._session.execute(sa.insert(projects).values(**vars(project)))
        except IntegrityError as exc:  # the unique slug index decides races between replicas
            raise ProjectSlugTaken(project.slug) from exc

    async def get_project(self, project_id: uuid.UUID) -> Project | None:
        row = (await self._session.execute(sa.select(projects).where(projects.c.id == project_id))).first()
        return Project(**row._mapping) if row else None

    async def get_project_by_slug(self, slug: str) -> Project | None:
        row = (await self._session.execute(sa.select(projects).where(projects.c.slug == slug))).first()
        return Project(**row._mapping) if row else None

    async def list_projects(self, only: uuid.UUID | None = None) -> list[Project]:
        stmt = sa.select(projects).order_by(projects.c.created_at)
        if only is not None:
            stmt = stmt.where(projects.c.id == only)
        return [Project(**r._mapping) for r in (await self._session.execute(stmt)).all()]

    async def add_token(self, token: ApiToken) -> None:
        await self._session.execute(sa.insert(api_tokens).values(**vars(token)))

    async def get_token(self, token_id: uuid.UUID) -> ApiToken | None:
        return await self._one_token(api_tokens.c.id == token_id)

    async def find_token_by_hash(self, token_hash: str) -> ApiToken | None:
        return await self._one_token(api_tokens.c.token_hash == token_hash)

    async def list_tokens(self, project_id: uuid.UUID) -> list[ApiToken]:
        stmt = sa.select(api_tokens).where(api_tokens.c.project_id == project_id).order_by(api_tokens.c.created_at)
        return [ApiToken(**r._mapping) for r in (await self._session.execute(stmt)).all()]

    async def save_token(self, token: ApiToken) -> None:
        await self._session.execute(
            sa.update(api_tokens).where(api_tokens.c.id == token.id).values(revoked_at=token.revoked_at)
        )

    async def any_admin_token(self) -> bool:
        stmt = sa.select(sa.func.count()).where(api_tokens.c.is_admin.is_(True), api_tokens.c.revoked_at.is_(None))
        return bool(await self._session.scalar(stmt))

    async def lock_bootstrap(self) -> None:
        """Serialise first-start bootstrap between replicas (released at commit)."""
        await self._session.execute(sa.select(sa.func.pg_advisory_xact_lock(0x767470_B007)))

    async def _one_token(self, where: Any) -> ApiToken | None:
        row = (await self._session.execute(sa.select(api_tokens).where(where))).first()
        return ApiToken(**row._mapping) if row else None
