"""REST routes under /api/v1/exports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from vtp_export.adapters.jobs_client import UpstreamUnavailable
from vtp_export.domain.formats import FORMATS, Problem
from vtp_export.domain.model import ExportNotFound, ExportNotReady, ParityNotPassed
from vtp_export.entrypoints.capabilities import capabilities
from vtp_export.entrypoints.schemas import ExportIn, ExportOut, ExportPage
from vtp_export.service_layer import commands
from vtp_export.service_layer.commands import Deps, ExportRequest, RequestRefused
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.fields import Offset
from vtp_runtime.http.openapi import binary_response, json_body, problems
from vtp_runtime.http.problems import ProblemError, validation_errors
from vtp_runtime.storage import StorageError

Caller = Annotated[Principal, Depends(current_principal)]
STATUSES = "^(queued|running|succeeded|failed)$"


def _refused(problems: list[Problem]) -> ProblemError:
    errors = [{"pointer": "#/body" + p.pointer, "code": p.code, "message": p.message} for p in problems]
    codes = {p.code for p in problems}
    code = codes.pop() if len(codes) == 1 else "validation_failed"
    return ProblemError(422, code, "The export cannot be made", f"{len(errors)} problem(s)", errors)


def _parse(body: dict[str, Any]) -> ExportRequest:
    try:
        parsed = ExportIn.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "pointer": e["pointer"].replace("#/", "#/body/", 1)} for e in validation_errors(exc.errors())]
        fmt = body.get("format")
        if isinstance(fmt, str) and fmt not in FORMATS:
            errors.append({"pointer": "#/body/format", "code": "format_unavailable", "message": "unknown format"})
        raise ProblemError(422, "validation_failed", "Validation failed", f"{len(errors)} problem(s)", errors) from exc
    return ExportRequest(parsed.job_id, parsed.checkpoint, parsed.format, parsed.options)


def _not_found(exc: Exception) -> ProblemError:
    return ProblemError(404, "export_not_found", "Export not found", str(exc))


def _not_ready(exc: Exception) -> ProblemError:
    title = "The export's parity did not pass" if isinstance(exc, ParityNotPassed) else "The export has no package"
    return ProblemError(409, "export_not_ready", title, str(exc))


def build_router(deps: Deps) -> APIRouter:
    router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

    @router.get("/capabilities", summary="Formats, options and what this deployment can produce now")
    async def caps(caller: Caller) -> dict[str, Any]:
        return capabilities(deps.toolchains)

    @router.post(
        "",
        status_code=202,
        response_model=ExportOut,
        summary="Export a job's checkpoint (202 queued; 200 with the existing export for the same content)",
        responses={
            200: {"model": ExportOut, "description": "The same checkpoint, format and options: the existing export"},
            **problems(422, 503),
        },
        openapi_extra=json_body(ExportIn),
    )
    async def create(request: Request, caller: Caller, body: Annotated[dict[str, Any], Body()]) -> Any:
        export_request = _parse(body)
        token = request.headers["authorization"].partition(" ")[2].strip()
        try:
            export, created = await commands.create_export(deps, caller, token, export_request)
        except RequestRefused as exc:
            raise _refused(exc.problems) from exc
        except UpstreamUnavailable as exc:
            raise ProblemError(503, "upstream_unavailable", "Jobs or datasets service unavailable", str(exc)) from exc
        out = ExportOut.of(export)
        return out if created else JSONResponse(out.model_dump(mode="json"), status_code=200)

    @router.get("", response_model=ExportPage)
    async def search(
        caller: Caller,
        job_id: uuid.UUID | None = None,
        format: Annotated[str | None, Query(pattern="^[a-z]{1,20}$")] = None,
        status: Annotated[str | None, Query(pattern=STATUSES)] = None,
        default: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> ExportPage:
        items, total = await commands.list_exports(deps, caller, job_id, format, status, default, limit, offset)
        return ExportPage(items=[ExportOut.of(e) for e in items], total=total, limit=limit, offset=offset)

    @router.get("/{export_id}", response_model=ExportOut, responses=problems(404))
    async def get(export_id: uuid.UUID, caller: Caller) -> ExportOut:
        try:
            return ExportOut.of(await commands.get_export(deps, caller, export_id))
        except ExportNotFound as exc:
            raise _not_found(exc) from exc

    @router.post(
        "/{export_id}/default",
        response_model=ExportOut,
        summary="Make this the job's default export",
        responses=problems(404, 409),
    )
    async def default(export_id: uuid.UUID, caller: Caller) -> ExportOut:
        try:
            return ExportOut.of(await commands.make_default(deps, caller, export_id))
        except ExportNotFound as exc:
            raise _not_found(exc) from exc
        except ExportNotReady as exc:
            raise _not_ready(exc) from exc

    @router.delete(
        "/{export_id}",
        status_code=204,
        summary="Delete the export (a running one is stopped)",
        response_class=Response,
        responses=problems(404),
    )
    async def delete(export_id: uuid.UUID, caller: Caller) -> Response:
        try:
            await commands.delete_export(deps, caller, export_id)
        except ExportNotFound as exc:
            raise _not_found(exc) from exc
        return Response(status_code=204)

    @router.get(
        "/{export_id}/download",
        summary="Stream the package (zip: model files, metadata.json, predict.py, README, Triton repository)",
        response_class=Response,
        responses={**binary_response("application/zip", "The package"), **problems(404, 409, 503)},
    )
    async def download(export_id: uuid.UUID, caller: Caller) -> StreamingResponse:
        try:
            export, key = await commands.package_key(deps, caller, export_id)
            chunks = deps.store.open_stream(key)
            first = await anext(chunks)  # a missing object fails here, before the 200 is sent
        except ExportNotFound as exc:
            raise _not_found(exc) from exc
        except ExportNotReady as exc:
            raise _not_ready(exc) from exc
        except (StorageError, StopAsyncIteration) as exc:
            raise ProblemError(503, "storage_unavailable", "The package cannot be read now", str(exc)) from exc

        async def body() -> AsyncIterator[bytes]:
            yield first
            async for chunk in chunks:
                yield chunk

        name = f"export-{export.job_id}-v{export.version}-{export.format}.zip"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if export.artifact:
            headers["Content-Length"] = str(export.artifact["size_bytes"])
            headers["X-Content-SHA256"] = export.artifact["sha256"]
        return StreamingResponse(body(), media_type="application/zip", headers=headers)

    return router
