"""Commands on API keys and deployment limits: create, list, get, revoke, rotate; read and set limits."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from vtp_inference.adapters.key_changes import KeyChanges
from vtp_inference.adapters.key_repository import KeyRepository
from vtp_inference.domain.keys import (
    SCOPES,
    SHOWN_PREFIX_CHARS,
    ApiKey,
    KeyRequest,
    Limits,
    check_request,
    new_secret,
    rotate,
)
from vtp_inference.domain.model import DeploymentNotFound, Problem, RequestRefused
from vtp_inference.service_layer.access import Access
from vtp_inference.service_layer.unit_of_work import InferenceUnitOfWork, NewUow
from vtp_runtime.auth import Principal, hash_token

_log = logging.getLogger(__name__)


class KeyNotFound(Exception):
    pass


class KeyNotActive(Exception):
    """Revoked, expired, or already rotated: it cannot be rotated."""


@dataclass
class KeyDeps:
    new_uow: NewUow
    access: Access
    changes: KeyChanges


async def _missing(uow: InferenceUnitOfWork, project_id: uuid.UUID, wanted: frozenset[uuid.UUID]) -> list[uuid.UUID]:
    return [d for d in sorted(wanted, key=str) if await uow.repo.get(project_id, d) is None]


async def create_key(
    deps: KeyDeps, caller: Principal, request: KeyRequest, pointers: dict[uuid.UUID, str], shape: list[Problem]
) -> tuple[ApiKey, str]:
    """A new key and its secret (shown once); every problem (`shape`: the body's own) at once."""
    now = datetime.now(UTC)
    problems = [*shape, *(Problem("/body" + p.pointer, p.code, p.message) for p in check_request(request, now))]
    unknown = sorted(request.scopes - SCOPES)
    problems += [Problem("/body/scopes", "invalid_scopes", f"unknown scope {s!r}") for s in unknown]
    secret = new_secret()
    key = ApiKey(
        uuid.uuid4(), caller.project_id, request.name, secret[:SHOWN_PREFIX_CHARS], hash_token(secret),
        request.scopes, request.deployments, request.limits, now, request.expires_at,
    )  # fmt: skip
    async with deps.new_uow() as uow:
        missing = await _missing(uow, caller.project_id, request.deployments or frozenset())
        problems += [
            Problem(pointers.get(d, "/body/deployments"), "deployment_not_found", "no such deployment in this project")
            for d in missing
        ]
        if problems:
            raise RequestRefused(problems)
        await KeyRepository(uow.session).add(key)
        await uow.commit()
    return key, secret


async def list_keys(
    deps: KeyDeps, caller: Principal, deployment_id: uuid.UUID | None, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    async with deps.new_uow() as uow:
        if deployment_id is not None and await uow.repo.get(caller.project_id, deployment_id) is None:
            raise DeploymentNotFound(str(deployment_id))
        return await KeyRepository(uow.session).search(caller.project_id, deployment_id, limit, offset)


async def get_key(deps: KeyDeps, caller: Principal, key_id: uuid.UUID, deployment_id: uuid.UUID | None) -> ApiKey:
    async with deps.new_uow() as uow:
        key = await KeyRepository(uow.session).get(caller.project_id, key_id)
    if key is None or (deployment_id is not None and not key.reaches(deployment_id)):
        raise KeyNotFound(str(key_id))
    return key


async def _ended(deps: KeyDeps, key_id: uuid.UUID, at: datetime | None) -> None:
    """Tell every replica (best effort: if Redis is down, caches expire within `key_cache_seconds`)."""
    try:
        await deps.access.end_key(key_id, at)
        await deps.changes.publish("key", str(key_id))
    except (RedisError, OSError) as exc:
        _log.warning("key %s ended in the database only (Redis: %s)", key_id, exc)


async def revoke_key(deps: KeyDeps, caller: Principal, key_id: uuid.UUID, deployment_id: uuid.UUID | None) -> None:
    """Revoke (again: a no-op); refused on every replica within a second."""
    await get_key(deps, caller, key_id, deployment_id)
    async with deps.new_uow() as uow:
        repo = KeyRepository(uow.session)
        key = await repo.get(caller.project_id, key_id, lock=True)
        if key is None:
            raise KeyNotFound(str(key_id))
        if key.revoked_at is None:
            key.revoked_at = datetime.now(UTC)
            await repo.save(key)
            await uow.commit()
    await _ended(deps, key_id, None)


async def rotate_key(
    deps: KeyDeps, caller: Principal, key_id: uuid.UUID, deployment_id: uuid.UUID | None, overlap: timedelta
) -> tuple[ApiKey, ApiKey, str]:
    """The old key (ending after `overlap`), its successor and the successor's secret."""
    await get_key(deps, caller, key_id, deployment_id)
    now, secret = datetime.now(UTC), new_secret()
    async with deps.new_uow() as uow:
        repo = KeyRepository(uow.session)
        old = await repo.get(caller.project_id, key_id, lock=True)
        if old is None:
            raise KeyNotFound(str(key_id))
        if not old.usable(now) or old.rotated_to is not None:
            raise KeyNotActive(str(key_id))
        ending, successor = rotate(old, uuid.uuid4(), secret, now, overlap)
        await repo.save(ending)
        await repo.add(successor)
        await uow.commit()
    await _ended(deps, key_id, ending.expires_at)
    return ending, successor, secret


async def ensure_deployment(deps: KeyDeps, caller: Principal, deployment_id: uuid.UUID) -> None:
    async with deps.new_uow() as uow:
        if await uow.repo.get(caller.project_id, deployment_id) is None:
            raise DeploymentNotFound(str(deployment_id))


async def get_limits(deps: KeyDeps, caller: Principal, deployment_id: uuid.UUID) -> Limits:
    async with deps.new_uow() as uow:
        if await uow.repo.get(caller.project_id, deployment_id) is None:
            raise DeploymentNotFound(str(deployment_id))
        return await KeyRepository(uow.session).limits_of(deployment_id) or Limits()


async def set_limits(deps: KeyDeps, caller: Principal, deployment_id: uuid.UUID, limits: Limits) -> Limits:
    async with deps.new_uow() as uow:
        if await uow.repo.get(caller.project_id, deployment_id) is None:
            raise DeploymentNotFound(str(deployment_id))
        await KeyRepository(uow.session).set_limits(caller.project_id, deployment_id, limits, datetime.now(UTC))
        await uow.commit()
    deps.access.forget("limits", str(deployment_id))
    try:
        await deps.changes.publish("limits", str(deployment_id))
    except (RedisError, OSError) as exc:  # the other replicas' cached limits expire within seconds
        _log.warning("limits of %s changed without a broadcast (Redis: %s)", deployment_id, exc)
    return limits
