"""The batch submission route: checks a zip or a snapshot and the predict parameters, admits, stores, queues.

A submission is admitted as one request of all its images (the limiter's buckets, concurrency and
image quotas, all or nothing) once its images are checked and before anything is stored. The quota
windows it took them from are recorded on the batch: one that ends failed or cancelled gives its
unprocessed images back to those still current (service_layer.batch_quota).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from vtp_inference.adapters.model_cache import Loaded, ModelIntegrity, ModelInvalid
from vtp_inference.domain.batches import Batch, BatchStatus
from vtp_inference.domain.keys import KeyPrincipal
from vtp_inference.domain.model import DeploymentNotFound, NotServing, Problem, RequestRefused
from vtp_inference.entrypoints.access_http import access_problem, check_scope
from vtp_inference.entrypoints.batch_deps import BatchApiDeps
from vtp_inference.entrypoints.batch_sources import (
    checked_zip,
    read_fields,
    snapshot_needs_token,
    snapshot_source,
    store_zip,
)
from vtp_inference.entrypoints.batch_views import NEW_BATCH_FORM, NEW_BATCH_JSON, batch_view
from vtp_inference.entrypoints.http import not_found, refused
from vtp_inference.entrypoints.metered import record_request
from vtp_inference.entrypoints.predict_http import PARAMS, parse_params
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_inference.service_layer.access import AccessError, Admission, RateLimited
from vtp_inference.service_layer.batch_inputs import ZipInput
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import multipart_body, problems
from vtp_runtime.http.problems import ProblemError
from vtp_runtime.storage import StorageError

Caller = Annotated[Principal, Depends(current_principal)]
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")  # a snapshot needs no file part
SUBMIT_BODY = multipart_body(NEW_BATCH_FORM, {"file": {"contentType": "application/zip"}})
SUBMIT_BODY["requestBody"]["content"]["application/json"] = {"schema": NEW_BATCH_JSON}


def _new_batch(
    batch_id: uuid.UUID, caller: Principal, entry: Loaded, source: dict[str, Any], params: dict[str, Any], chunk: int,
    windows: tuple[str, ...],
) -> Batch:  # fmt: skip
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
        quota_windows=list(windows),  # what a failed or cancelled batch gives its unprocessed images back to
    )


def add_submit_route(router: APIRouter, deps: BatchApiDeps) -> None:
    """`POST /{deployment_id}/batches` on `router`."""

    async def _entry(caller: Principal, deployment_id: uuid.UUID) -> Loaded:
        try:
            return await deps.predictor.loaded(caller, deployment_id, split=False)
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc
        except NotServing as exc:
            raise ProblemError(409, "deployment_not_ready", "The deployment is not serving", str(exc)) from exc
        except (ModelIntegrity, ModelInvalid, StorageError) as exc:
            raise ProblemError(503, "model_unavailable", "The model cannot be loaded", str(exc)) from exc

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
        fields, upload = await read_fields(request, kind)
        named = fields.get("snapshot_id") not in (None, "")
        if named and isinstance(caller, KeyPrincipal):
            raise snapshot_needs_token()
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
                source = await snapshot_source(deps, request, fields, found)
            elif upload is not None and not named:
                checked = await checked_zip(deps, upload, work / "input.zip", found)
            if found or params is None or (source is None and checked is None):
                raise refused(found, "The batch cannot be started")
            files = source["files"] if source is not None else checked.files if checked is not None else []
            admission = await _admit(caller, deployment_id, len(files), started)  # nothing stored before this
            try:
                if checked is not None:
                    key = f"batches/{caller.project_id}/{batch_id}/input.zip"
                    source = await store_zip(deps, work / "input.zip", key, checked.files)
                batch = _new_batch(
                    batch_id, caller, entry, source or {}, vars(params), deps.chunk_size, admission.windows
                )
                await lifecycle.submit(deps.new_uow, batch)
            except Exception:
                await admission.refund()  # not stored: its images go back to the quotas
                raise
            finally:
                await admission.release()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return JSONResponse(batch_view(batch), status_code=202, headers=admission.headers)
