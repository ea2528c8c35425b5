"""REST routes: turn requests into handler calls and domain errors into problems."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from vtp_identity.domain.model import (
    AdminRequired,
    ApiToken,
    IdentityError,
    ProjectNotFound,
    ProjectSlugTaken,
    TokenNotFound,
)
from vtp_identity.entrypoints.schemas import IssuedTokenOut, ProjectIn, ProjectOut, TokenIn, TokenOut, WhoAmI
from vtp_identity.service_layer import handlers
from vtp_identity.service_layer.unit_of_work import IdentityUnitOfWork
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import problems
from vtp_runtime.http.problems import ProblemError

Caller = Annotated[Principal, Depends(current_principal)]

_PROBLEMS: dict[type[IdentityError], tuple[int, str, str]] = {
    AdminRequired: (403, "admin_required", "Admin token required"),
    ProjectNotFound: (404, "project_not_found", "Project not found"),
    TokenNotFound: (404, "token_not_found", "Token not found"),
    ProjectSlugTaken: (409, "project_slug_taken", "Project slug already taken"),
}


def _problem(exc: IdentityError) -> ProblemError:
    status, code, title = _PROBLEMS[type(exc)]
    return ProblemError(status, code, title, str(exc))


def build_router(new_uow: Callable[[], IdentityUnitOfWork]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["identity"])

    @router.get("/auth/whoami", response_model=WhoAmI, summary="The project and token behind the bearer token")
    async def whoami(caller: Caller) -> WhoAmI:
        return WhoAmI(project_id=caller.project_id, token_id=caller.token_id, is_admin=caller.is_admin)

    @router.post(
        "/projects",
        status_code=201,
        response_model=ProjectOut,
        summary="Create a project (admin)",
        responses=problems(403, 409),
    )
    async def create_project(body: ProjectIn, caller: Caller) -> ProjectOut:
        try:
            project = await handlers.create_project(new_uow(), caller, body.name, body.slug)
        except IdentityError as exc:
            raise _problem(exc) from exc
        return ProjectOut(**asdict(project))

    @router.get("/projects", response_model=list[ProjectOut], summary="Projects the caller can see")
    async def list_projects(caller: Caller) -> list[ProjectOut]:
        return [ProjectOut(**asdict(p)) for p in await handlers.list_projects(new_uow(), caller)]

    @router.get("/projects/{project_id}", response_model=ProjectOut, responses=problems(404))
    async def get_project(project_id: uuid.UUID, caller: Caller) -> ProjectOut:
        try:
            return ProjectOut(**asdict(await handlers.get_project(new_uow(), caller, project_id)))
        except IdentityError as exc:
            raise _problem(exc) from exc

    @router.post(
        "/projects/{project_id}/tokens",
        status_code=201,
        response_model=IssuedTokenOut,
        summary="Issue a token (admin)",
        responses=problems(403, 404),
    )
    async def issue_token(project_id: uuid.UUID, body: TokenIn, caller: Caller) -> IssuedTokenOut:
        try:
            issued = await handlers.issue_token(new_uow(), caller, project_id, body.name, body.is_admin)
        except IdentityError as exc:
            raise _problem(exc) from exc
        return IssuedTokenOut(**_token_fields(issued.token), token=issued.secret)

    @router.get(
        "/projects/{project_id}/tokens",
        response_model=list[TokenOut],
        summary="The project's tokens (admin); any other token sees only itself",
        responses=problems(404),
    )
    async def list_tokens(project_id: uuid.UUID, caller: Caller) -> list[TokenOut]:
        try:
            tokens = await handlers.list_tokens(new_uow(), caller, project_id)
        except IdentityError as exc:
            raise _problem(exc) from exc
        return [TokenOut(**_token_fields(t)) for t in tokens]

    @router.delete(
        "/tokens/{token_id}",
        response_model=TokenOut,
        summary="Revoke a token (admin); any other token only itself",
        responses=problems(404),
    )
    async def revoke_token(token_id: uuid.UUID, caller: Caller) -> TokenOut:
        try:
            return TokenOut(**_token_fields(await handlers.revoke_token(new_uow(), caller, token_id)))
        except IdentityError as exc:
            raise _problem(exc) from exc

    return router


def _token_fields(token: ApiToken) -> dict[str, object]:
    fields: dict[str, object] = asdict(token)
    fields.pop("token_hash")  # the digest never leaves the service
    return fields
