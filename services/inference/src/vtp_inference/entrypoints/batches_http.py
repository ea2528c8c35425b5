"""Batch inference routes: submit over an uploaded zip or a dataset snapshot, list, read, cancel, download.

A project token may do all of it in its project. An API key with `predict` may do it on the
deployments it reaches, with zips only (a snapshot is the project's dataset data). A submission is
admitted as one request of all its images (the limiter's buckets, concurrency and image quotas, all
or nothing) once its images are checked and before anything is stored.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from vtp_dice.archive import ArchiveLimits
from vtp_inference.adapters.datasets_client import DatasetsClient, DatasetsUnavailable
from vtp_inference.adapters.model_cache import Loaded, ModelIntegrity, ModelInvalid
from vtp_inference.domain.batches import KEY_SOURCE, Batch, BatchFinished, BatchNotFound, BatchStatus, key_may_see
from vtp_inference.domain.keys import KeyPrincipal
from vtp_inference.domain.model import DeploymentNotFound, NotServing, Problem, RequestRefused
from vtp_inference.entrypoints.access_http import access_problem, check_scope
from vtp_inference.entrypoints.batch_views import (
    NEW_BATCH_FORM,
    NEW_BATCH_JSON,
    RESULTS,
    batch_view,
    json_fields,
    save_upload,
)
from vtp_inference.entrypoints.http import not_found, refused
from vtp_inference.entrypoints.metered import record_request
from vtp_inference.entrypoints.predict_http import PARAMS, parse_params
from vtp_inference.predict.images import Limits
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_inference.service_layer import batch_snapshot as snapshots
from vtp_inference.service_layer.access import Access, AccessError, Admission, RateLimited
from vtp_inference.service_layer.batch_inputs import ZipInput, check_zip
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.predicting import Predictor
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import multipart_body, problems
from vtp_runtime.http.problems import ProblemError
from vtp_runtime.storage import ObjectStore, StorageError

Caller = Annotated[Principal, Depends(current_principal)]
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")  # a snapshot needs no file part
SUBMIT_BODY = multipart_body(NEW_BATCH_FORM, {"file": {"contentType": "application/zip"}})
SUBMIT_BODY["requestBody"]["content"]["application/json"] = {"schema": NEW_BATCH_JSON}


@dataclass(frozen=True)
class BatchApiDeps:
    new_uow: NewUow
    store: ObjectStore
    datasets: DatasetsClient
    predictor: Predictor
    archive_limits: ArchiveLimits
    image_limits: Limits
    max_images: int
    max_upload_bytes: int
    chunk_size: int
    access: Access
    meter: Meter


def _batch_not_found(batch_id: uuid.UUID) -> ProblemError:
    return ProblemError(404, "batch_not_found", "Batch not found", f"no batch {batch_id} in this project")


def _snapshot_needs_token() -> ProblemError:
    """A key cannot read datasets: refused before anything is looked up, rather than accepted and failed."""
    detail = "a dataset snapshot batch needs a project token (datasets take no API keys); a key sends a zip `file`"
    return ProblemError(403, "credential_not_allowed", "Credential not allowed here", detail)


def _new_batch(
    batch_id: uuid.UUID, caller: Principal, entry: Loaded, source: dict[str, Any], params: dict[str, Any], chunk: int
) -> Batch:
    d = entry.deployment
    return Batch(
        id=batch_id,
        project_id=caller.project_id,
        deployment_id=d.id,
        key_id=caller.key_id if isinstance(caller, KeyPrincipal) else None,
        status=BatchStatus.QUEUED,
        task_type=d.task_type,
        source=source,
        params=params,
        total_images=len(source["files"]),
        chunk_size=chunk,
        created_at=datetime.now(UTC),
    )


def build_batches_router(deps: BatchApiDeps) -> APIRouter:
    router = APIRouter(prefix="/api/v1/deployments", tags=["batches"])

    async def _entry(caller: Principal, deployment_id: uuid.UUID) -> Loaded:
        try:
            return await deps.predictor.loaded(caller, deployment_id, split=False)
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc
        except NotServing as exc:
            raise ProblemError(409, "deployment_not_ready", "The deployment is not serving", str(exc)) from exc
        except (ModelIntegrity, ModelInvalid, StorageError) as exc:
            raise ProblemError(503, "model_unavailable", "The model cannot be loaded", str(exc)) from exc

    async def _snapshot(request: Request, fields: dict[str, Any], found: list[Problem]) -> dict[str, Any] | None:
        """The snapshot source (its images of the split), or None with the problems added to `found`."""
        split = fields.get("split") or "all"
        if split not in snapshots.SPLITS:
            found.append(Problem("/body/split", "invalid_parameter", f"split is one of {', '.join(snapshots.SPLITS)}"))
        try:
            snapshot_id = uuid.UUID(str(fields["snapshot_id"]))
            ref = await deps.datasets.snapshot(request.headers.get("authorization", ""), snapshot_id)
        except ValueError:
            ref = None
        except DatasetsUnavailable as exc:
            raise ProblemError(503, "datasets_unavailable", "The datasets service is unavailable", str(exc)) from exc
        if ref is None:
            found.append(Problem("/body/snapshot_id", "snapshot_not_found", "no such dataset snapshot in this project"))
            return None
        if split not in snapshots.SPLITS:
            return None
        reader = snapshots.source_of(deps.store, ref.content_hash, str(ref.id))
        try:
            chosen = await asyncio.to_thread(snapshots.images_of, reader, ref.split_fingerprint, split)
        except (StorageError, ValueError, KeyError) as exc:
            raise ProblemError(503, "snapshot_unreadable", "The snapshot cannot be read", str(exc)) from exc
        if not chosen.files:
            found.append(Problem("/body/split", "no_images", f"the snapshot has no images in split {split}"))
        elif len(chosen.files) > deps.max_images:
            many = f"{len(chosen.files)} images; at most {deps.max_images}"
            found.append(Problem("/body/snapshot_id", "too_many_images", many))
        return {
            "kind": "snapshot", "snapshot_id": str(ref.id), "dataset_id": str(ref.dataset_id),
            "content_hash": ref.content_hash, "split_fingerprint": ref.split_fingerprint, "split": split,
            "files": chosen.files, "image_ids": chosen.image_ids,
        }  # fmt: skip

    async def _check_zip(item: UploadFile, path: Path, found: list[Problem]) -> ZipInput:
        """The uploaded zip saved to `path` and checked, its problems added to `found`."""
        await save_upload(item, path, deps.max_upload_bytes)
        checked = await asyncio.to_thread(check_zip, path, deps.archive_limits, deps.image_limits, deps.max_images)
        found += checked.problems
        return checked

    async def _store_zip(path: Path, key: str, files: list[str]) -> dict[str, Any]:
        try:
            info = await deps.store.put_file(key, path, content_type="application/zip")
        except StorageError as exc:
            raise ProblemError(503, "storage_unavailable", "Object storage unavailable", str(exc)) from exc
        return {"kind": "zip", "uri": info.uri, "sha256": info.sha256, "size_bytes": info.size_bytes, "files": files}

    async def _admit(caller: Principal, deployment_id: uuid.UUID, images: int, started: float) -> Admission:
        """The submission as one request of all its images: buckets, concurrency and quotas in one step."""
        try:
            return await deps.access.admit(caller, deployment_id, images)
        except AccessError as exc:
            if isinstance(exc, RateLimited):  # counted like a refused predict, under the caller's key
                record_request(deps.meter, caller, deployment_id, started, images=0, bytes_in=0, error=exc.code)
                exc = RateLimited(f"{exc}; a batch takes its {images} images at once", exc.headers, exc.retry_after)
            raise access_problem(exc) from exc

    @router.post(
        "/{deployment_id}/batches",
        status_code=202,
        summary="Start a batch inference job over an uploaded zip of images (multipart `file`) or a dataset "
        "snapshot (`snapshot_id`, `split`; JSON or form; project tokens only), with predict parameters",
        responses=problems(400, 403, 404, 409, 413, 415, 422, 429, 503),
        openapi_extra=SUBMIT_BODY,
    )
    async def submit(deployment_id: uuid.UUID, request: Request, caller: Caller) -> JSONResponse:
        started = time.perf_counter()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in FORMS and kind != "application/json":
            raise ProblemError(415, "unsupported_media_type", "Unsupported media type", "multipart, a form or JSON")
        declared = int(request.headers.get("content-length") or 0)
        if declared > deps.max_upload_bytes + 65536:
            raise ProblemError(413, "payload_too_large", "Payload too large", f"at most {deps.max_upload_bytes} bytes")
        check_scope(deps.access, caller, deployment_id)  # a key of another deployment: 403, nothing read
        entry = await _entry(caller, deployment_id)
        upload: UploadFile | None = None
        if kind == "application/json":
            fields = await json_fields(request)
        else:
            form = await request.form(max_files=1, max_fields=50)
            fields = {k: form.getlist(k) if k == "classes" else form.get(k) for k in form if k != "file"}
            upload = item if isinstance(item := form.get("file"), UploadFile) else None
        named = fields.get("snapshot_id") not in (None, "")
        if named and isinstance(caller, KeyPrincipal):
            raise _snapshot_needs_token()
        found: list[Problem] = []
        try:
            params = parse_params({k: fields[k] for k in PARAMS if k in fields}, entry)
        except RequestRefused as exc:
            found += exc.problems
            params = None
        if upload is not None and named:
            found.append(Problem("/body", "source_conflict", "send either a zip `file` or a `snapshot_id`, not both"))
        elif upload is None and not named:
            found.append(Problem("/body", "source_missing", "send a zip of images as `file`, or a `snapshot_id`"))
        batch_id = uuid.uuid4()
        work = Path(tempfile.mkdtemp(prefix="batch-upload-"))
        try:
            source: dict[str, Any] | None = None
            checked: ZipInput | None = None
            if named and upload is None:
                source = await _snapshot(request, fields, found)
            elif upload is not None and not named:
                checked = await _check_zip(upload, work / "input.zip", found)
            if found or params is None or (source is None and checked is None):
                raise refused(found, "The batch cannot be started")
            files = source["files"] if source is not None else checked.files if checked is not None else []
            admission = await _admit(caller, deployment_id, len(files), started)  # nothing stored before this
            try:
                if checked is not None:
                    key = f"batches/{caller.project_id}/{batch_id}/input.zip"
                    source = await _store_zip(work / "input.zip", key, checked.files)
                batch = _new_batch(batch_id, caller, entry, source or {}, vars(params), deps.chunk_size)
                await lifecycle.submit(deps.new_uow, batch)
            except Exception:
                await admission.refund()  # not stored: its images go back to the quotas
                raise
            finally:
                await admission.release()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return JSONResponse(batch_view(batch), status_code=202, headers=admission.headers)

    @router.get(
        "/{deployment_id}/batches", summary="The deployment's batches, newest first", responses=problems(403, 404)
    )
    async def search(
        deployment_id: uuid.UUID,
        caller: Caller,
        status: Annotated[str | None, Query(pattern="^(queued|running|succeeded|failed|cancelled)$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        check_scope(deps.access, caller, deployment_id)
        await _owned_deployment(caller, deployment_id)
        kind = KEY_SOURCE if isinstance(caller, KeyPrincipal) else None  # a key lists zip batches only
        found = await lifecycle.of_deployment(deps.new_uow, caller.project_id, deployment_id, limit, status, kind)
        return {"items": [batch_view(b) for b in found]}

    async def _owned_deployment(caller: Principal, deployment_id: uuid.UUID) -> None:
        async with deps.new_uow() as uow:
            if await uow.repo.get(caller.project_id, deployment_id) is None:
                raise not_found(DeploymentNotFound(str(deployment_id)))

    async def _batch(caller: Principal, deployment_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
        """The caller's batch of this deployment; a key's: of a deployment it reaches, not a snapshot's."""
        check_scope(deps.access, caller, deployment_id)
        try:
            batch = await lifecycle.get(deps.new_uow, caller.project_id, batch_id)
        except BatchNotFound as exc:
            raise _batch_not_found(batch_id) from exc
        if batch.deployment_id != deployment_id or (isinstance(caller, KeyPrincipal) and not key_may_see(batch)):
            raise _batch_not_found(batch_id)
        return batch

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
        await _batch(caller, deployment_id, batch_id)
        try:
            batch = await lifecycle.cancel(deps.new_uow, caller.project_id, batch_id)
        except BatchFinished as exc:
            raise ProblemError(409, "batch_finished", "The batch already ended", str(exc)) from exc
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
