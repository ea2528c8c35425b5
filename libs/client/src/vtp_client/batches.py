"""Batch inference over a zip of images or a dataset snapshot (`/api/v1/deployments/{id}/batches`)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from vtp_client._base import Group, Resource
from vtp_client.transport import Progress, Source, file_part

__all__ = ["TERMINAL_BATCH_STATUSES", "Batch", "Batches"]

TERMINAL_BATCH_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class Batch(Resource):
    id: UUID
    deployment_id: UUID
    status: str
    """queued, running, succeeded, failed or cancelled"""
    task: str
    source: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    progress: dict[str, int] = {}
    """total_images, processed_images, failed_images, chunk_size, chunks_done, total_chunks"""
    attempt: int = 0
    cancel_requested: bool = False
    timings: dict[str, Any] = {}
    results: dict[str, Any] = {}
    """Per format (`jsonl`, and `coco` for detect): size, sha256 and the download path."""
    error: dict[str, Any] | None = None
    quota: dict[str, int] = {}
    """images_taken from the image quotas at submission; images_returned once a failed or cancelled
    batch gave its unprocessed images back"""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_BATCH_STATUSES


class Batches(Group):
    """`client.batches`: run a deployment over many images in the background, then fetch the results."""

    UPLOAD_TIMEOUT = 600.0

    def create(
        self,
        deployment_id: UUID | str,
        source: Source | None = None,
        *,
        snapshot_id: UUID | str | None = None,
        split: Literal["train", "val", "test", "all"] | None = None,
        conf: float | None = None,
        iou: float | None = None,
        max_det: int | None = None,
        classes: Sequence[int] | None = None,
        imgsz: int | None = None,
        progress: Progress | None = None,
    ) -> Batch:
        """Start a batch over a zip of images (path or bytes), or over a dataset snapshot (`snapshot_id`,
        its images of `split`, default all); every image is checked before it is queued."""
        given = {"conf": conf, "iou": iou, "max_det": max_det, "imgsz": imgsz}
        path = f"/api/v1/deployments/{deployment_id}/batches"
        if source is None:  # a snapshot (or neither: the service says what is missing)
            body: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
            body |= {"snapshot_id": str(snapshot_id) if snapshot_id else None, "split": split}
            if classes:
                body["classes"] = list(classes)
            return Batch.model_validate(self._t.json("POST", path, json=body))
        fields: dict[str, Any] = {k: str(v) for k, v in given.items() if v is not None}
        if classes:
            fields["classes"] = [str(c) for c in classes]
        if snapshot_id is not None:  # both: the service refuses it (source_conflict)
            fields["snapshot_id"] = str(snapshot_id)
        file_name, reader = file_part(source, progress)
        with reader:
            files = {"file": (file_name, reader, "application/zip")}
            answer = self._t.json("POST", path, data=fields, files=files, timeout=self.UPLOAD_TIMEOUT)
        return Batch.model_validate(answer)

    def list(self, deployment_id: UUID | str, *, status: str | None = None, limit: int = 100) -> builtins.list[Batch]:
        """The deployment's batches, newest first (with an API key: the ones it submitted)."""
        params = {"status": status, "limit": limit}
        answer = self._t.json("GET", f"/api/v1/deployments/{deployment_id}/batches", params=params)
        return [Batch.model_validate(b) for b in answer["items"]]

    def get(self, deployment_id: UUID | str, batch_id: UUID | str) -> Batch:
        return Batch.model_validate(self._t.json("GET", f"/api/v1/deployments/{deployment_id}/batches/{batch_id}"))

    def cancel(self, deployment_id: UUID | str, batch_id: UUID | str) -> Batch:
        """Cancel (a running batch stops after its current chunk); an ended one answers 409 `batch_finished`."""
        path = f"/api/v1/deployments/{deployment_id}/batches/{batch_id}/cancel"
        return Batch.model_validate(self._t.json("POST", path, idempotent=True))

    def wait(
        self, deployment_id: UUID | str, batch_id: UUID | str, *, timeout: float = 3600.0, poll: float = 1.0
    ) -> Batch:
        """Poll until succeeded, failed or cancelled; `TimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get(deployment_id, batch_id)
            if batch.finished:
                return batch
            if time.monotonic() >= deadline:
                raise TimeoutError(f"batch {batch_id} still {batch.status} after {timeout:.0f} s")
            time.sleep(poll)

    def results(
        self,
        deployment_id: UUID | str,
        batch_id: UUID | str,
        dest: Path | str,
        *,
        format: Literal["jsonl", "coco"] = "jsonl",
        progress: Progress | None = None,
    ) -> Path:
        """Stream a succeeded batch's results to `dest`: JSON Lines (a row per image), or COCO for detect."""
        path = f"/api/v1/deployments/{deployment_id}/batches/{batch_id}/results"
        target, _ = self._t.download(path, Path(dest), params={"format": format}, progress=progress)
        return target
