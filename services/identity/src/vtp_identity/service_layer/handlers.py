"""Commands on projects and tokens. Authorization rules live here, not in routes."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vtp_identity.domain.model import AdminRequired, ApiToken, Project, ProjectNotFound, TokenNotFound
from vtp_identity.service_layer.unit_of_work import IdentityUnitOfWork
from vtp_runtime.auth import Principal, hash_token, new_token

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token; `secret` exists only in this answer."""

    token: ApiToken
    secret: str


def _can_see(caller: Principal, project_id: uuid.UUID) -> bool:
    return caller.is_admin or caller.project_id == project_id


async def create_project(uow: IdentityUnitOfWork, caller: Principal, name: str, slug: str | None) -> Project:
    if not caller.is_admin:
        raise AdminRequired("creating projects needs an admin token")
    async with uow:
        project = Project.new(name, slug)
        await uow.repo.add_project(project)
        await uow.commit()
    return project


async def list_projects(uow: IdentityUnitOfWork, caller: Principal) -> list[Project]:
    async with uow:
        return await uow.repo.list_projects(None if caller.is_admin else caller.project_id)


async def get_project(uow: IdentityUnitOfWork, caller: Principal, project_id: uuid.UUID) -> Project:
    async with uow:
        project = await uow.repo.get_project(project_id) if _can_see(caller, project_id) else None
    if project is None:  # another project's id is indistinguishable from a missing one
        raise ProjectNotFound(str(project_id))
    return project


async def issue_token(
    uow: IdentityUnitOfWork, caller: Principal, project_id: uuid.UUID, name: str, is_admin: bool
) -> IssuedToken:
    if not caller.is_admin:
        raise AdminRequired("issuing tokens needs an admin token")
    async with uow:
        if not _can_see(caller, project_id) or await uow.repo.get_project(project_id) is None:
            raise ProjectNotFound(str(project_id))
        issued = _new_issued(project_id, name, is_admin)
        await uow.repo.add_token(issued.token)
        await uow.commit()
    return issued


def _manages(caller: Principal, token: ApiToken) -> bool:
    """Admin tokens manage every token; any other token only itself."""
    return caller.is_admin or token.id == caller.token_id


async def list_tokens(uow: IdentityUnitOfWork, caller: Principal, project_id: uuid.UUID) -> list[ApiToken]:
    async with uow:
        if not _can_see(caller, project_id) or await uow.repo.get_project(project_id) is None:
            raise ProjectNotFound(str(project_id))
        return [t for t in await uow.repo.list_tokens(project_id) if _manages(caller, t)]


async def revoke_token(uow: IdentityUnitOfWork, caller: Principal, token_id: uuid.UUID) -> ApiToken:
    async with uow:
        token = await uow.repo.get_token(token_id)
        if token is None or not _manages(caller, token):  # others' tokens are invisible, as if missing
            raise TokenNotFound(str(token_id))
        token.revoke()
        await uow.repo.save_token(token)
        await uow.commit()
    return token


async def verify(uow: IdentityUnitOfWork, secret: str) -> Principal | None:
    async with uow:
        token = await uow.repo.find_token_by_hash(hash_token(secret))
    if token is None or not token.active:
        return None
    return Principal(token.project_id, token.id, token.is_admin)


async def bootstrap(uow: IdentityUnitOfWork, slug: str, token_file: Path | None, fixed_secret: str | None) -> bool:
    """On first start: the default project and its admin token, written to `token_file`.

    Returns False when an admin token already exists (nothing to do).
    """
    async with uow:
        await uow.repo.lock_bootstrap()
        if await uow.repo.any_admin_token():
            return False
        project = await uow.repo.get_project_by_slug(slug)
        if project is None:
            project = Project.new(slug.replace("-", " ").title(), slug)
            await uow.repo.add_project(project)
        issued = _new_issued(project.id, "bootstrap admin", True, fixed_secret)
        await uow.repo.add_token(issued.token)
        if token_file is not None:
            write_secret_file(token_file, issued.secret)
        await uow.commit()  # after the file: a failed write leaves no unreachable admin token behind
    _log.info("bootstrap admin token for project %r written to %s", slug, token_file)
    return True


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only (mode 600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _new_issued(project_id: uuid.UUID, name: str, is_admin: bool, secret: str | None = None) -> IssuedToken:
    secret = secret or new_token()
    token = ApiToken(
        id=uuid.uuid4(),
        project_id=project_id,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:12],
        is_admin=is_admin,
        created_at=datetime.now(UTC),
    )
    return IssuedToken(token, secret)
