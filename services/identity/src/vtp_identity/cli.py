"""Admin commands run directly against the identity database."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from vtp_identity.bootstrap import MIGRATIONS
from vtp_identity.service_layer import handlers
from vtp_identity.service_layer.unit_of_work import IdentityUnitOfWork
from vtp_identity.settings import IdentitySettings
from vtp_runtime.auth import Principal
from vtp_runtime.db.engine import make_engine, make_session_factory
from vtp_runtime.db.migrations import upgrade_to_head

# The CLI acts as the operator who owns the database: a platform admin.
_OPERATOR = Principal(project_id=uuid.UUID(int=0), token_id=uuid.UUID(int=0), is_admin=True)


async def _uow(settings: IdentitySettings) -> IdentityUnitOfWork:
    if not settings.database_url:
        raise SystemExit("VTP_DATABASE_URL is required")
    await upgrade_to_head(settings.database_url, MIGRATIONS)
    return IdentityUnitOfWork(make_session_factory(make_engine(settings.database_url, pool_size=1)), "identity-cli")


async def create_project(settings: IdentitySettings, name: str, slug: str | None) -> dict[str, Any]:
    project = await handlers.create_project(await _uow(settings), _OPERATOR, name, slug)
    return asdict(project)


async def create_token(settings: IdentitySettings, project_id: uuid.UUID, name: str, admin: bool) -> dict[str, Any]:
    issued = await handlers.issue_token(await _uow(settings), _OPERATOR, project_id, name, admin)
    fields = asdict(issued.token)
    fields.pop("token_hash")
    return {**fields, "token": issued.secret}
