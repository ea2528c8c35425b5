"""REST routes of API keys (project-wide `/api/v1/keys`, per deployment `/api/v1/deployments/{id}/keys`)
and of a deployment's limits (`/api/v1/deployments/{id}/limits`). Project tokens only: the auth
middleware never lets an API key reach these paths."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel

from vtp_inference.domain.keys import PREDICT, KeyRequest, Limits
from vtp_inference.domain.model import DeploymentNotFound, Problem, RequestRefused
from vtp_inference.entrypoints.http import not_found, parse, refused
from vtp_inference.entrypoints.key_schemas import (
    DeploymentKeyIn,
    KeyCreated,
    KeyIn,
    KeyOut,
    KeyPage,
    LimitsBody,
    RotateIn,
    lenient,
)
from vtp_inference.service_layer import keys
from vtp_inference.service_layer.keys import KeyDeps, KeyNotActive, KeyNotFound
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.fields import Offset
from vtp_runtime.http.openapi import json_body, problems
from vtp_runtime.http.problems import ProblemError

Caller = Annotated[Principal, Depends(current_principal)]
T = TypeVar("T")
PageSize = Annotated[int, Query(ge=1, le=200)]


def _optional_body(model: type[BaseModel]) -> dict[str, Any]:
    """`json_body(model)` for a body that may be left out (rotation: every field has a default)."""
    extra = json_body(model)
    next(v for v in extra.values() if isinstance(v, dict) and "content" in v)["required"] = False
    return extra


def _now() -> datetime:
    return datetime.now(UTC)


async def _guarded(command: Awaitable[T]) -> T:
    try:
        return await command
    except DeploymentNotFound as exc:
        raise not_found(exc) from exc
    except KeyNotFound as exc:
        raise ProblemError(404, "key_not_found", "API key not found", str(exc)) from exc
    except KeyNotActive as exc:
        raise ProblemError(409, "key_not_active", "Revoked, expired or already rotated", str(exc)) from exc
    except RequestRefused as exc:
        raise refused(exc.problems, "The key cannot be created") from exc


async def _create(
    deps: KeyDeps, caller: Principal, body: Any, model: type[KeyIn], deployment_id: uuid.UUID | None
) -> KeyCreated:
    parsed, errors = lenient(model, body)
    given = parsed.get("deployments")
    deployments = frozenset([deployment_id]) if deployment_id else frozenset(given) if given is not None else None
    pointers = {d: f"/body/deployments/{i}" for i, d in enumerate(given or [])}
    limits: BaseModel | None = parsed.get("limits")
    request = KeyRequest(
        parsed.get("name", ""),
        frozenset(parsed.get("scopes", [PREDICT])),
        deployments,
        parsed.get("expires_at"),
        limits.domain() if isinstance(limits, LimitsBody) else Limits(),
    )
    shape = [Problem(e["pointer"][1:], e["code"], e["message"]) for e in errors]
    try:
        key, secret = await keys.create_key(deps, caller, request, pointers, shape)
    except RequestRefused as exc:
        raise refused(exc.problems, "The key cannot be created") from exc
    return KeyCreated(**KeyOut.of(key, _now()).model_dump(), secret=secret)


def build_keys_router(deps: KeyDeps) -> APIRouter:
    router = APIRouter(tags=["api keys"])
    one = "/api/v1/deployments/{deployment_id}/keys"

    @router.post(
        "/api/v1/keys",
        status_code=201,
        response_model=KeyCreated,
        summary="Create a project-wide API key (all deployments, or those listed); the secret is shown once",
        responses=problems(422),
        openapi_extra=json_body(KeyIn),
    )
    async def create(caller: Caller, body: Annotated[Any, Body()]) -> KeyCreated:
        return await _create(deps, caller, body, KeyIn, None)

    @router.post(
        one,
        status_code=201,
        response_model=KeyCreated,
        summary="Create an API key of this deployment; the secret is shown once",
        responses=problems(404, 422),
        openapi_extra=json_body(DeploymentKeyIn),
    )
    async def create_for(deployment_id: uuid.UUID, caller: Caller, body: Annotated[Any, Body()]) -> KeyCreated:
        await _guarded(keys.ensure_deployment(deps, caller, deployment_id))
        return await _create(deps, caller, body, DeploymentKeyIn, deployment_id)

    async def _page(caller: Principal, deployment_id: uuid.UUID | None, limit: int, offset: int) -> KeyPage:
        items, total = await _guarded(keys.list_keys(deps, caller, deployment_id, limit, offset))
        now = _now()
        return KeyPage(items=[KeyOut.of(k, now) for k in items], total=total, limit=limit, offset=offset)

    @router.get("/api/v1/keys", response_model=KeyPage, summary="The project's API keys, newest first")
    async def search(caller: Caller, limit: PageSize = 50, offset: Offset = 0) -> KeyPage:
        return await _page(caller, None, limit, offset)

    @router.get(one, response_model=KeyPage, summary="Keys that reach this deployment", responses=problems(404))
    async def search_for(deployment_id: uuid.UUID, caller: Caller, limit: PageSize = 50, offset: Offset = 0) -> KeyPage:
        return await _page(caller, deployment_id, limit, offset)

    @router.get("/api/v1/keys/{key_id}", response_model=KeyOut, responses=problems(404))
    @router.get(one + "/{key_id}", response_model=KeyOut, responses=problems(404))
    async def get(key_id: uuid.UUID, caller: Caller, deployment_id: uuid.UUID | None = None) -> KeyOut:
        return KeyOut.of(await _guarded(keys.get_key(deps, caller, key_id, deployment_id)), _now())

    @router.delete(
        "/api/v1/keys/{key_id}",
        status_code=204,
        response_class=Response,
        summary="Revoke (refused on every replica within a second)",
        responses=problems(404),
    )
    @router.delete(
        one + "/{key_id}", status_code=204, response_class=Response, summary="Revoke", responses=problems(404)
    )
    async def revoke(key_id: uuid.UUID, caller: Caller, deployment_id: uuid.UUID | None = None) -> Response:
        await _guarded(keys.revoke_key(deps, caller, key_id, deployment_id))
        return Response(status_code=204)

    @router.post(
        "/api/v1/keys/{key_id}/rotate",
        status_code=201,
        response_model=KeyCreated,
        summary="A successor key (secret shown once); the old key keeps working for `overlap_seconds`",
        responses=problems(404, 409, 422),
        openapi_extra=_optional_body(RotateIn),
    )
    @router.post(
        one + "/{key_id}/rotate",
        status_code=201,
        response_model=KeyCreated,
        summary="Rotate",
        responses=problems(404, 409, 422),
        openapi_extra=_optional_body(RotateIn),
    )
    async def rotate(
        key_id: uuid.UUID, caller: Caller, body: Annotated[Any, Body()] = None, deployment_id: uuid.UUID | None = None
    ) -> KeyCreated:
        overlap = timedelta(seconds=parse(RotateIn, {} if body is None else body).overlap_seconds)
        _, successor, secret = await _guarded(keys.rotate_key(deps, caller, key_id, deployment_id, overlap))
        return KeyCreated(**KeyOut.of(successor, _now()).model_dump(), secret=secret)

    @router.get(
        "/api/v1/deployments/{deployment_id}/limits",
        response_model=LimitsBody,
        summary="The deployment's limits (every caller together)",
        responses=problems(404),
    )
    async def limits(deployment_id: uuid.UUID, caller: Caller) -> LimitsBody:
        return LimitsBody(**(await _guarded(keys.get_limits(deps, caller, deployment_id))).as_dict())

    @router.put(
        "/api/v1/deployments/{deployment_id}/limits",
        response_model=LimitsBody,
        summary="Replace the deployment's limits (absent or null: unlimited)",
        responses=problems(404, 422),
        openapi_extra=json_body(LimitsBody),
    )
    async def set_limits(deployment_id: uuid.UUID, caller: Caller, body: Annotated[Any, Body()]) -> LimitsBody:
        wanted = parse(LimitsBody, body).domain()
        return LimitsBody(**(await _guarded(keys.set_limits(deps, caller, deployment_id, wanted))).as_dict())

    return router
