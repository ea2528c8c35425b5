"""What a batch submission reads: its fields (JSON or a form), a dataset snapshot's images, an uploaded zip.

Each reader adds what it finds wrong to a list of problems, so one answer names them all; only an
unavailable dependency (datasets, storage) is raised at once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from vtp_inference.adapters.datasets_client import DatasetsUnavailable
from vtp_inference.domain.model import Problem
from vtp_inference.entrypoints.batch_deps import BatchApiDeps
from vtp_inference.entrypoints.batch_views import json_fields, save_upload
from vtp_inference.service_layer import batch_snapshot as snapshots
from vtp_inference.service_layer.batch_inputs import ZipInput, check_zip
from vtp_runtime.http.problems import ProblemError
from vtp_runtime.storage import StorageError


async def read_fields(request: Request, kind: str) -> tuple[dict[str, Any], UploadFile | None]:
    """The submission's fields and its zip part (None without one) from a JSON body or a form."""
    if kind == "application/json":
        return await json_fields(request), None
    form = await request.form(max_files=1, max_fields=50)
    fields = {k: form.getlist(k) if k == "classes" else form.get(k) for k in form if k != "file"}
    return fields, item if isinstance(item := form.get("file"), UploadFile) else None


def snapshot_needs_token() -> ProblemError:
    """A key cannot read datasets: refused before anything is looked up, rather than accepted and failed."""
    detail = "a dataset snapshot batch needs a project token (datasets take no API keys); a key sends a zip `file`"
    return ProblemError(403, "credential_not_allowed", "Credential not allowed here", detail)


async def snapshot_source(
    deps: BatchApiDeps, request: Request, fields: dict[str, Any], found: list[Problem]
) -> dict[str, Any] | None:
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


async def checked_zip(deps: BatchApiDeps, item: UploadFile, path: Path, found: list[Problem]) -> ZipInput:
    """The uploaded zip saved to `path` and checked, its problems added to `found`."""
    await save_upload(item, path, deps.max_upload_bytes)
    checked = await asyncio.to_thread(check_zip, path, deps.archive_limits, deps.image_limits, deps.max_images)
    found += checked.problems
    return checked


async def store_zip(deps: BatchApiDeps, path: Path, key: str, files: list[str]) -> dict[str, Any]:
    """The checked zip stored under `key`: the batch's zip source."""
    try:
        info = await deps.store.put_file(key, path, content_type="application/zip")
    except StorageError as exc:
        raise ProblemError(503, "storage_unavailable", "Object storage unavailable", str(exc)) from exc
    return {"kind": "zip", "uri": info.uri, "sha256": info.sha256, "size_bytes": info.size_bytes, "files": files}
