"""REST routes under /api/v1/deployments (the predict route is in predict_http)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ValidationError

from vtp_inference.adapters.exports_client import UpstreamUnavailable
from vtp_inference.domain.model import (
    Deployment,
    DeploymentConflict,
    DeploymentNotFound,
    NameTaken,
    NoPreviousExport,
    Problem,
    RequestRefused,
)
from vtp_inference.domain.traffic import Share
from vtp_inference.entrypoints.schemas import DeploymentIn, DeploymentOut, DeploymentPage, DeploymentPatch
from vtp_inference.service_layer import commands, switching, traffic
from vtp_inference.service_layer.commands import DeploymentRequest, Deps
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.fields import Offset
from vtp_runtime.http.openapi import json_body, problems
from vtp_runtime.http.problems import ProblemError, validation_errors

M = TypeVar("M", bound=BaseModel)
Caller = Annotated[Principal, Depends(current_principal)]
STATUSES = "^(creating|ready|failed|stopped)$"


def refused(found: list[Problem], title: str) -> ProblemError:
    errors = [{"pointer": "#" + p.pointer, "code": p.code, "message": p.message} for p in found]
    codes = {p.code for p in found}
    code = codes.pop() if len(codes) == 1 else "validation_failed"
    return ProblemError(422, code, title, f"{len(errors)} problem(s)", errors)


def parse(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "pointer": e["pointer"].replace("#/", "#/body/", 1)} for e in validation_errors(exc.errors())]
        raise ProblemError(422, "validation_failed", "Validation failed", f"{len(errors)} problem(s)", errors) from exc


def not_found(exc: Exception) -> ProblemError:
    return ProblemError(404, "deployment_not_found", "Deployment not found", str(exc))


def _token(request: Request) -> str:
    return request.headers["authorization"].partition(" ")[2].strip()


def build_router(deps: Deps) -> APIRouter:
    router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])

    @router.post(
        "",
        status_code=201,
        response_model=DeploymentOut,
        summary="Deploy a succeeded export (answers once it is ready, or failed with a code)",
        responses=problems(409, 422, 503),
        openapi_extra=json_body(DeploymentIn),
    )
    async def create(request: Request, caller: Caller, body: Annotated[dict[str, Any], Body()]) -> DeploymentOut:
        parsed = parse(DeploymentIn, body)
        wanted = DeploymentRequest(
            parsed.export_id, parsed.name, parsed.runtime, parsed.conf, parsed.iou, parsed.max_det
        )
        try:
            return DeploymentOut.of(await commands.create_deployment(deps, caller, _token(request), wanted))
        except RequestRefused as exc:
            found = [Problem("/body" + p.pointer, p.code, p.message) for p in exc.problems]
            raise refused(found, "The export cannot be deployed") from exc
        except NameTaken as exc:
            raise ProblemError(409, "deployment_name_taken", "Name taken", f"{exc} is in use") from exc
        except UpstreamUnavailable as exc:
            raise ProblemError(503, "upstream_unavailable", "Export service unavailable", str(exc)) from exc

    @router.get("", response_model=DeploymentPage)
    async def search(
        caller: Caller,
        status: Annotated[str | None, Query(pattern=STATUSES)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> DeploymentPage:
        items, total = await commands.list_deployments(deps, caller, status, limit, offset)
        return DeploymentPage(items=[DeploymentOut.of(d) for d in items], total=total, limit=limit, offset=offset)

    @router.get("/{deployment_id}", response_model=DeploymentOut, responses=problems(404))
    async def get(deployment_id: uuid.UUID, caller: Caller) -> DeploymentOut:
        try:
            return DeploymentOut.of(await commands.get_deployment(deps, caller, deployment_id))
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc

    async def _guarded(command: Awaitable[Deployment]) -> Deployment:
        try:
            return await command
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc
        except RequestRefused as exc:
            found = [Problem("/body" + p.pointer, p.code, p.message) for p in exc.problems]
            raise refused(found, "The deployment cannot switch to this export") from exc
        except (DeploymentConflict, NoPreviousExport) as exc:
            code = "no_previous_export" if isinstance(exc, NoPreviousExport) else "deployment_state_conflict"
            raise ProblemError(409, code, "Not possible in this state", str(exc)) from exc
        except UpstreamUnavailable as exc:
            raise ProblemError(503, "upstream_unavailable", "Export service unavailable", str(exc)) from exc

    async def _update(caller: Principal, deployment_id: uuid.UUID, changes: dict[str, Any], action: str) -> Any:
        try:
            return DeploymentOut.of(await commands.update_deployment(deps, caller, deployment_id, changes, action))
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc
        except NameTaken as exc:
            raise ProblemError(409, "deployment_name_taken", "Name taken", f"{exc} is in use") from exc
        except DeploymentConflict as exc:
            raise ProblemError(409, "deployment_state_conflict", "Not possible in this state", str(exc)) from exc

    @router.patch(
        "/{deployment_id}",
        response_model=DeploymentOut,
        summary="Switch to another export (checked before traffic moves), rename, or change default thresholds",
        responses=problems(404, 409, 422, 503),
        openapi_extra=json_body(DeploymentPatch),
    )
    async def patch(
        deployment_id: uuid.UUID, request: Request, caller: Caller, body: Annotated[dict[str, Any], Body()]
    ) -> Any:
        changes = parse(DeploymentPatch, body).model_dump(exclude_none=True)
        if "traffic" in changes:
            return await _traffic(deployment_id, request, caller, changes)
        export_id = changes.pop("export_id", None)
        if export_id is None:
            return await _update(caller, deployment_id, changes, "patch")
        try:
            switch = switching.switch_export(deps, caller, _token(request), deployment_id, export_id, changes)
            return DeploymentOut.of(await _guarded(switch))
        except NameTaken as exc:
            raise ProblemError(409, "deployment_name_taken", "Name taken", f"{exc} is in use") from exc

    async def _traffic(deployment_id: uuid.UUID, request: Request, caller: Principal, changes: dict[str, Any]) -> Any:
        wanted = [Share(s["export_id"], s["weight"]) for s in changes.pop("traffic")]
        if changes:  # one change at a time: a split is checked on its own
            found = [Problem("/body/traffic", "traffic_not_alone", f"send traffic without {', '.join(changes)}")]
            raise refused(found, "The deployment cannot split its traffic so")
        split = traffic.set_traffic(deps, caller, _token(request), deployment_id, wanted)
        return DeploymentOut.of(await _guarded(split))

    @router.post(
        "/{deployment_id}/rollback",
        response_model=DeploymentOut,
        summary="Serve the export served before the last switch again",
        responses=problems(404, 409),
    )
    async def rollback(deployment_id: uuid.UUID, caller: Caller) -> Any:
        return DeploymentOut.of(await _guarded(switching.rollback(deps, caller, deployment_id)))

    @router.post("/{deployment_id}/activate", response_model=DeploymentOut, responses=problems(404, 409))
    async def activate(deployment_id: uuid.UUID, caller: Caller) -> Any:
        return await _update(caller, deployment_id, {}, "activate")

    @router.post("/{deployment_id}/deactivate", response_model=DeploymentOut, responses=problems(404, 409))
    async def deactivate(deployment_id: uuid.UUID, caller: Caller) -> Any:
        return await _update(caller, deployment_id, {}, "deactivate")

    @router.delete("/{deployment_id}", status_code=204, response_class=Response, responses=problems(404))
    async def delete(deployment_id: uuid.UUID, caller: Caller) -> Response:
        try:
            await commands.delete_deployment(deps, caller, deployment_id)
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc
        return Response(status_code=204)

    return router
