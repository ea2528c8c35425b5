"""REST routes under /api/v1/datasets: requests in, handler calls, problems out."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from vtp_datasets.adapters.multipart import Upload, receive_upload
from vtp_datasets.entrypoints.errors import HANDLED, as_problem
from vtp_datasets.entrypoints.schemas import DatasetOut, DatasetPage, SnapshotIn, SnapshotOut, SplitIn, SplitOut
from vtp_datasets.service_layer import handlers
from vtp_datasets.service_layer.handlers import Deps
from vtp_dice.detect_format import FORMATS
from vtp_dice.format import TASKS
from vtp_dice.splits import SplitConfig
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.fields import NUL_FREE_PATTERN, NulFreeStr, Offset, nul_problems
from vtp_runtime.http.openapi import multipart_body, problems
from vtp_runtime.http.problems import ProblemError

Caller = Annotated[Principal, Depends(current_principal)]
MAX_NAME = 200
MAX_DESCRIPTION = 2000
ZIP_PART = {
    "type": "string",
    "format": "binary",
    "contentMediaType": "application/zip",
    "description": "A DICE, YOLO or COCO zip (docs/datasets.md, Import)",
}
FORMAT_FIELD = {
    "type": "string",
    "enum": list(FORMATS),
    "default": "auto",
    "description": "How to read the zip; auto detects it from the content",
}
UPLOAD_ENCODING = {"file": {"contentType": "application/zip"}}
NEW_DATASET_FORM = {
    "type": "object",
    "required": ["name", "file"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": NUL_FREE_PATTERN},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION, "pattern": NUL_FREE_PATTERN},
        "file": ZIP_PART,
        "format": FORMAT_FIELD,
    },
}
NEW_VERSION_FORM = {"type": "object", "required": ["file"], "properties": {"file": ZIP_PART, "format": FORMAT_FIELD}}
# What an upload route can answer beyond auth: a malformed body (400), a taken name (409),
# a body over the limit (413), a body that is not multipart (415), a refused dataset (422).
UPLOAD_PROBLEMS = (400, 413, 415, 422)
SNAPSHOT_PROBLEMS = problems(404, 409)


def _form_problems(upload: Upload, *, need_name: bool) -> list[dict[str, str]]:
    errors = []
    name = upload.fields.get("name", "").strip()
    if need_name and not name:
        errors.append({"pointer": "#/form/name", "code": "missing", "message": "name is required"})
    elif len(name) > MAX_NAME:
        errors.append({"pointer": "#/form/name", "code": "string_too_long", "message": f"at most {MAX_NAME} chars"})
    if len(upload.fields.get("description", "")) > MAX_DESCRIPTION:
        errors.append({"pointer": "#/form/description", "code": "string_too_long", "message": "too long"})
    errors += nul_problems({k: upload.fields.get(k, "") for k in ("name", "description")}, "#/form/")
    if upload.fields.get("format", "auto") not in FORMATS:
        message = f"format must be one of {', '.join(FORMATS)}"
        errors.append({"pointer": "#/form/format", "code": "format_invalid", "message": message})
    if upload.file_path is None or upload.file_field != "file":
        errors.append(
            {"pointer": "#/form/file", "code": "missing", "message": "a zip in form field `file` is required"}
        )
    return errors


def build_router(deps: Deps, upload_dir: Path, max_upload_bytes: int) -> APIRouter:
    router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

    async def receive(request: Request, need_name: bool) -> Upload:
        upload = await receive_upload(
            request.headers.get("content-type", ""),
            request.headers.get("content-length"),
            request.stream(),
            upload_dir,
            max_upload_bytes,
        )
        errors = _form_problems(upload, need_name=need_name)
        if errors:
            upload.discard()
            raise ProblemError(422, "validation_failed", "Validation failed", f"{len(errors)} problem(s)", errors)
        return upload

    @router.post(
        "",
        status_code=201,
        response_model=DatasetOut,
        summary="Upload a DICE, YOLO or COCO zip as a new dataset",
        responses=problems(409, *UPLOAD_PROBLEMS),
        openapi_extra=multipart_body(NEW_DATASET_FORM, UPLOAD_ENCODING),
    )
    async def create(request: Request, caller: Caller) -> DatasetOut:
        upload = await receive(request, need_name=True)
        try:
            assert upload.file_path is not None
            name, description = upload.fields["name"].strip(), upload.fields.get("description") or None
            fmt = upload.fields.get("format", "auto")
            dataset, version = await handlers.create_dataset(deps, caller, name, description, upload.file_path, fmt)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        finally:
            upload.discard()
        return DatasetOut.of(dataset, version)

    @router.post(
        "/{dataset_id}/versions",
        status_code=201,
        response_model=DatasetOut,
        summary="Add images or annotation files: a new head version",
        responses=problems(404, *UPLOAD_PROBLEMS),
        openapi_extra=multipart_body(NEW_VERSION_FORM, UPLOAD_ENCODING),
    )
    async def add(dataset_id: uuid.UUID, request: Request, caller: Caller) -> DatasetOut:
        upload = await receive(request, need_name=False)
        try:
            assert upload.file_path is not None
            fmt = upload.fields.get("format", "auto")
            dataset, version = await handlers.add_version(deps, caller, dataset_id, upload.file_path, fmt)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        finally:
            upload.discard()
        return DatasetOut.of(dataset, version)

    @router.get("", response_model=DatasetPage, summary="Datasets of the caller's project")
    async def search(
        caller: Caller,
        task_type: Annotated[str | None, Query(pattern="^(" + "|".join(TASKS) + ")$")] = None,
        search: Annotated[NulFreeStr | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> DatasetPage:
        rows, total = await handlers.list_datasets(deps, caller, task_type, search, limit, offset)
        return DatasetPage(items=[DatasetOut.of(d, v) for d, v in rows], total=total, limit=limit, offset=offset)

    @router.get("/{dataset_id}", response_model=DatasetOut, responses=problems(404))
    async def get(dataset_id: uuid.UUID, caller: Caller) -> DatasetOut:
        try:
            return DatasetOut.of(*await handlers.get_dataset(deps, caller, dataset_id))
        except HANDLED as exc:
            raise as_problem(exc) from exc

    @router.delete(
        "/{dataset_id}", status_code=204, summary="Soft delete; snapshots stay readable", responses=problems(404)
    )
    async def delete(dataset_id: uuid.UUID, caller: Caller) -> Response:
        try:
            await handlers.delete_dataset(deps, caller, dataset_id)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        return Response(status_code=204)

    @router.get("/{dataset_id}/split", response_model=SplitOut, responses=problems(404))
    async def get_split(dataset_id: uuid.UUID, caller: Caller) -> SplitOut:
        try:
            config, counts = await handlers.split_counts(deps, caller, dataset_id)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        return SplitOut(**config.to_dict(), counts=counts)

    @router.put("/{dataset_id}/split", response_model=SplitOut, responses=problems(404, 422))
    async def put_split(dataset_id: uuid.UUID, body: SplitIn, caller: Caller) -> SplitOut:
        config = SplitConfig.from_dict(body.model_dump())
        problems = config.check()
        if problems:
            errors = [p.as_dict() for p in problems]
            raise ProblemError(422, "validation_failed", "Validation failed", f"{len(errors)} problem(s)", errors)
        try:
            counts = await handlers.put_split(deps, caller, dataset_id, config)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        return SplitOut(**config.to_dict(), counts=counts)

    @router.post(
        "/{dataset_id}/snapshots",
        response_model=SnapshotOut,
        status_code=201,
        summary="Freeze the head version (200 with the existing snapshot when nothing changed)",
        responses={200: {"model": SnapshotOut, "description": "Nothing changed: that one"}, **SNAPSHOT_PROBLEMS},
    )
    async def snapshot(
        dataset_id: uuid.UUID, caller: Caller, response: Response, body: SnapshotIn | None = None
    ) -> Any:
        try:
            snap, created = await handlers.create_snapshot(deps, caller, dataset_id, body.version_tag if body else None)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        response.status_code = 201 if created else 200
        return SnapshotOut.of(snap)

    @router.get("/{dataset_id}/snapshots", response_model=list[SnapshotOut], responses=problems(404))
    async def snapshots(dataset_id: uuid.UUID, caller: Caller) -> list[SnapshotOut]:
        try:
            return [SnapshotOut.of(s) for s in await handlers.list_snapshots(deps, caller, dataset_id)]
        except HANDLED as exc:
            raise as_problem(exc) from exc

    @router.get(
        "/snapshots/{snapshot_id}",
        response_model=SnapshotOut,
        summary="A snapshot of this project by its id alone (for services given only a snapshot id)",
        responses=problems(404),
    )
    async def snapshot_by_id(snapshot_id: uuid.UUID, caller: Caller) -> SnapshotOut:
        try:
            return SnapshotOut.of(await handlers.get_snapshot(deps, caller, None, snapshot_id))
        except HANDLED as exc:
            raise as_problem(exc) from exc

    @router.get("/{dataset_id}/snapshots/{snapshot_id}", response_model=SnapshotOut, responses=problems(404))
    async def snapshot_one(dataset_id: uuid.UUID, snapshot_id: uuid.UUID, caller: Caller) -> SnapshotOut:
        try:
            return SnapshotOut.of(await handlers.get_snapshot(deps, caller, dataset_id, snapshot_id))
        except HANDLED as exc:
            raise as_problem(exc) from exc

    return router
