"""Batch inference routes: submit over an uploaded zip or a dataset snapshot, list, read, cancel, download.

A project token may do all of it in its project. An API key with `predict` may do it on the
deployments it reaches, with zips only (a snapshot is the project's dataset data), and sees the
batches it submitted itself only (the repository scopes every read to its `Reader`). The submission
route and what it reads live in batch_submit_http and batch_sources; this module routes the rest.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from vtp_inference.domain.batches import Batch, BatchFinished, BatchNotFound, BatchStatus, Reader
from vtp_inference.domain.keys import KeyPrincipal
from vtp_inference.domain.model import DeploymentNotFound
from vtp_inference.entrypoints.access_http import check_scope
from vtp_inference.entrypoints.batch_deps import BatchApiDeps
from vtp_inference.entrypoints.batch_submit_http import add_submit_route
from vtp_inference.entrypoints.batch_views import RESULTS, batch_view
from vtp_inference.entrypoints.http import not_found
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_inference.service_layer import batch_quota
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import problems
from vtp_runtime.http.problems import ProblemError

Caller = Annotated[Principal, Depends(current_principal)]


def _batch_not_found(batch_id: uuid.UUID) -> ProblemError:
    return ProblemError(404, "batch_not_found", "Batch not found", f"no batch {batch_id} here")


def reader_of(caller: Principal) -> Reader:
    """A project token reads its project's batches; an API key those it submitted."""
    return Reader(caller.project_id, caller.key_id if isinstance(caller, KeyPrincipal) else None)


def build_batches_router(deps: BatchApiDeps) -> APIRouter:
    router = APIRouter(prefix="/api/v1/deployments", tags=["batches"])
    add_submit_route(router, deps)

    @router.get(
        "/{deployment_id}/batches",
        summary="The deployment's batches, newest first (an API key's: those it submitted)",
        responses=problems(403, 404),
    )
    async def search(
        deployment_id: uuid.UUID,
        caller: Caller,
        status: Annotated[str | None, Query(pattern="^(queued|running|succeeded|failed|cancelled)$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        check_scope(deps.access, caller, deployment_id)
        await _owned_deployment(caller, deployment_id)
        found = await lifecycle.of_deployment(deps.new_uow, reader_of(caller), deployment_id, limit, status)
        return {"items": [batch_view(b) for b in found]}

    async def _owned_deployment(caller: Principal, deployment_id: uuid.UUID) -> None:
        async with deps.new_uow() as uow:
            if await uow.repo.get(caller.project_id, deployment_id) is None:
                raise not_found(DeploymentNotFound(str(deployment_id)))

    async def _batch(caller: Principal, deployment_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
        """The caller's batch of this deployment; a key's: of a deployment it reaches, submitted by it."""
        check_scope(deps.access, caller, deployment_id)
        try:
            return await lifecycle.get(deps.new_uow, reader_of(caller), deployment_id, batch_id)
        except BatchNotFound as exc:
            raise _batch_not_found(batch_id) from exc

    @router.get(
        "/{deployment_id}/batches/{batch_id}",
        summary="A batch: status, progress, timings, results",
        responses=problems(403, 404),
    )
    async def get(deployment_id: uuid.UUID, batch_id: uuid.UUID, caller: Caller) -> dict[str, Any]:
        return batch_view(await _batch(caller, deployment_id, batch_id))

    @router.post(
        "/{deployment_id}/batches/{batch_id}/cancel",
        summary="Cancel a batch (a running one stops after its current chunk)",
        responses=problems(403, 404, 409),
    )
    async def cancel(deployment_id: uuid.UUID, batch_id: uuid.UUID, caller: Caller) -> dict[str, Any]:
        check_scope(deps.access, caller, deployment_id)
        try:
            batch = await lifecycle.cancel(deps.new_uow, reader_of(caller), deployment_id, batch_id)
        except BatchNotFound as exc:
            raise _batch_not_found(batch_id) from exc
        except BatchFinished as exc:
            raise ProblemError(409, "batch_finished", "The batch already ended", str(exc)) from exc
        if batch.quota_owed:  # a queued batch ended here: its images go back now
            returned = await batch_quota.settle(deps.new_uow, deps.quota, batch.id)
            if returned is not None:
                batch.quota_owed, batch.quota_returned = 0, returned
        return batch_view(batch)

    @router.get(
        "/{deployment_id}/batches/{batch_id}/results",
        summary="Download a succeeded batch's results: JSON Lines (one row per image), or COCO for detection",
        responses={200: RESULTS, **problems(403, 404, 409, 422)},
        response_class=StreamingResponse,
    )
    async def results(
        deployment_id: uuid.UUID,
        batch_id: uuid.UUID,
        caller: Caller,
        format: Annotated[str, Query(pattern="^(jsonl|coco)$")] = "jsonl",
    ) -> StreamingResponse:
        batch = await _batch(caller, deployment_id, batch_id)
        if batch.status != BatchStatus.SUCCEEDED:
            raise ProblemError(409, "batch_not_succeeded", "No results", f"the batch is {batch.status}")
        stored = batch.results.get(format)
        if stored is None:
            raise ProblemError(
                422,
                "coco_not_available",
                "No COCO results",
                f"COCO results are for detect batches, not {batch.task_type}",
            )
        key = deps.store.parse_uri(stored["uri"])
        media = "application/json" if format == "coco" else "application/x-ndjson"
        name = f"batch-{batch.id}.{'coco.json' if format == 'coco' else 'jsonl'}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(stored["size_bytes"])}
        return StreamingResponse(deps.store.open_stream(key), media_type=media, headers=headers)

    return router
