"""Snapshot content routes: compare two snapshots, read the manifest, download as DICE/YOLO/COCO."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from vtp_datasets.domain.compare import compare
from vtp_datasets.entrypoints.errors import HANDLED, as_problem
from vtp_datasets.service_layer import handlers
from vtp_datasets.service_layer.downloads import stream_snapshot
from vtp_datasets.service_layer.handlers import Deps
from vtp_dice.format import Task, canonical_json
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import binary_response, problems
from vtp_runtime.http.problems import ProblemError

Caller = Annotated[Principal, Depends(current_principal)]
SNAPSHOT = "/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}"
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["manifest", "splits"],
    "properties": {
        "manifest": {"type": "object", "description": "Images, annotation and metadata blobs by sha256."},
        "splits": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Image to split."},
    },
}
MANIFEST_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "Manifest and split", "content": {"application/json": {"schema": MANIFEST_SCHEMA}}}
}


def build_snapshot_files_router(deps: Deps) -> APIRouter:
    router = APIRouter(tags=["snapshots"])

    @router.get(
        SNAPSHOT + "/compare/{other_id}",
        summary="Images added/removed, annotations changed, class deltas",
        responses=problems(404),
    )
    async def diff(dataset_id: uuid.UUID, snapshot_id: uuid.UUID, other_id: uuid.UUID, caller: Caller) -> Any:
        try:
            base, base_content, _ = await handlers.snapshot_content(deps, caller, dataset_id, snapshot_id)
            target, target_content, _ = await handlers.snapshot_content(deps, caller, dataset_id, other_id)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        result = compare(
            {i.file_name: i.sha256 for i in base_content.manifest.images},
            {i.file_name: i.sha256 for i in target_content.manifest.images},
            base_content.docs,
            target_content.docs,
            base.statistics.get("class_distribution", {}),
            target.statistics.get("class_distribution", {}),
        )
        return {"base": str(base.id), "target": str(target.id), **result}

    @router.get(
        SNAPSHOT + "/manifest",
        summary="Content-addressed manifest and frozen split (for trainers)",
        response_class=Response,
        responses={**MANIFEST_RESPONSE, **problems(404)},
    )
    async def manifest(dataset_id: uuid.UUID, snapshot_id: uuid.UUID, caller: Caller) -> Response:
        try:
            _, content, splits = await handlers.snapshot_content(deps, caller, dataset_id, snapshot_id)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        body = b'{"manifest":' + content.manifest.to_json() + b',"splits":' + canonical_json(splits) + b"}"
        return Response(body, media_type="application/json")

    @router.get(
        SNAPSHOT + "/blobs/{sha256}",
        summary="One image, annotation or metadata blob of the snapshot",
        response_class=Response,
        responses={**binary_response("application/octet-stream", "The blob's bytes"), **problems(404)},
    )
    async def blob(
        dataset_id: uuid.UUID,
        snapshot_id: uuid.UUID,
        sha256: Annotated[str, Path(pattern="^[0-9a-f]{64}$")],
        caller: Caller,
    ) -> StreamingResponse:
        try:
            _, content, _ = await handlers.snapshot_content(deps, caller, dataset_id, snapshot_id)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        manifest = content.manifest
        members = {i.sha256 for i in manifest.images} | set(manifest.annotations.values()) | {manifest.metadata}
        if sha256 not in members:  # only what the caller's snapshot holds, never an arbitrary blob
            raise ProblemError(404, "blob_not_in_snapshot", "Blob not found", "The snapshot holds no such blob.")
        return StreamingResponse(deps.blobs.stream(sha256), media_type="application/octet-stream")

    @router.get(
        SNAPSHOT + "/download",
        summary="Stream the snapshot as a zip: DICE, YOLO or COCO",
        response_class=Response,
        responses={**binary_response("application/zip", "The zip, streamed"), **problems(404, 422)},
    )
    async def download(
        dataset_id: uuid.UUID,
        snapshot_id: uuid.UUID,
        caller: Caller,
        format: Annotated[Literal["dice", "yolo", "coco"], Query()] = "dice",
        task: Annotated[
            Task | None,
            Query(
                description="For yolo and coco; default: the snapshot's only task the format can write "
                "(several: 422 task_required, listing them). yolo of classification is ImageFolder."
            ),
        ] = None,
    ) -> StreamingResponse:
        try:
            snapshot, content, splits = await handlers.snapshot_content(deps, caller, dataset_id, snapshot_id)
            written, chunks = await stream_snapshot(deps.blobs, content, splits, format, task)
        except HANDLED as exc:
            raise as_problem(exc) from exc
        name = f"{snapshot.version_tag}-{format}{'-' + written if written else ''}.zip"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(chunks, media_type="application/zip", headers=headers)

    return router
