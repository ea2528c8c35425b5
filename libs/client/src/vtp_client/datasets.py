"""Datasets, versions, splits, snapshots and snapshot downloads (`/api/v1/datasets`)."""

from __future__ import annotations

import builtins
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from vtp_client._base import Group, Page, Resource
from vtp_client.errors import ApiError
from vtp_client.transport import Progress, Source, file_part

__all__ = ["Dataset", "Datasets", "Snapshot", "Split"]


class Dataset(Resource):
    id: UUID
    name: str
    description: str | None = None
    head_version: int
    content_hash: str
    tasks: dict[str, Any] = {}
    image_count: int
    size_bytes: int
    split_counts: dict[str, int] = {}
    statistics: dict[str, Any] = {}
    created_at: datetime
    updated_at: datetime


class Split(Resource):
    method: str
    train: float
    val: float
    test: float
    seed: int
    assignments: dict[str, str] = {}
    counts: dict[str, int] = {}


class Snapshot(Resource):
    id: UUID
    dataset_id: UUID
    version_tag: str
    dataset_version: int
    content_hash: str
    split_fingerprint: str
    split_config: dict[str, Any] = {}
    tasks: list[str] = []
    image_count: int
    size_bytes: int
    statistics: dict[str, Any] = {}
    created_at: datetime


class Datasets(Group):
    """`client.datasets`. A refused upload raises `ApiError` (422) whose `problems` name file, pointer and code."""

    UPLOAD_TIMEOUT = 600.0  # validation of a large archive takes a while before the answer

    def upload(
        self,
        source: Source,
        name: str,
        *,
        description: str | None = None,
        format: Literal["auto", "dice", "yolo", "coco"] = "auto",
        progress: Progress | None = None,
    ) -> Dataset:
        """Upload a DICE, YOLO or COCO zip as a new dataset; `progress(sent, total)` follows the bytes."""
        fields = {"name": name, "format": format} | ({"description": description} if description else {})
        return Dataset.model_validate(self._send("/api/v1/datasets", source, fields, progress))

    def add_version(
        self,
        dataset_id: UUID | str,
        source: Source,
        *,
        format: Literal["auto", "dice", "yolo", "coco"] = "auto",
        progress: Progress | None = None,
    ) -> Dataset:
        """Add images or annotations: a new head version."""
        body = self._send(f"/api/v1/datasets/{dataset_id}/versions", source, {"format": format}, progress)
        return Dataset.model_validate(body)

    def _send(self, path: str, source: Source, fields: dict[str, str], progress: Progress | None) -> Any:
        file_name, reader = file_part(source, progress)
        with reader:
            files = {"file": (file_name, reader, "application/zip")}
            return self._t.json("POST", path, data=fields, files=files, timeout=self.UPLOAD_TIMEOUT)

    def list(
        self, *, task_type: str | None = None, search: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[Dataset]:
        params = {"task_type": task_type, "search": search, "limit": limit, "offset": offset}
        return Page[Dataset].model_validate(self._t.json("GET", "/api/v1/datasets", params=params))

    def get(self, dataset_id: UUID | str) -> Dataset:
        return Dataset.model_validate(self._t.json("GET", f"/api/v1/datasets/{dataset_id}"))

    def delete(self, dataset_id: UUID | str) -> None:
        """Soft delete: the snapshots stay readable for the jobs that pinned them."""
        self._t.request("DELETE", f"/api/v1/datasets/{dataset_id}")

    def split(self, dataset_id: UUID | str) -> Split:
        return Split.model_validate(self._t.json("GET", f"/api/v1/datasets/{dataset_id}/split"))

    def set_split(
        self,
        dataset_id: UUID | str,
        method: Literal["auto", "manual", "partial"] = "auto",
        *,
        train: float = 0.8,
        val: float = 0.2,
        test: float = 0.0,
        seed: int = 42,
        assignments: dict[str, str] | None = None,
    ) -> Split:
        body: dict[str, Any] = {"method": method, "train": train, "val": val, "test": test, "seed": seed}
        body["assignments"] = assignments or {}
        return Split.model_validate(self._t.json("PUT", f"/api/v1/datasets/{dataset_id}/split", json=body))

    def snapshot(self, dataset_id: UUID | str, version_tag: str | None = None) -> Snapshot:
        """Freeze the head version; the same content again answers the existing snapshot (so retried)."""
        body = {"version_tag": version_tag} if version_tag else None
        path = f"/api/v1/datasets/{dataset_id}/snapshots"
        return Snapshot.model_validate(self._t.json("POST", path, json=body, idempotent=True))

    def snapshots(self, dataset_id: UUID | str) -> builtins.list[Snapshot]:
        return [Snapshot.model_validate(s) for s in self._t.json("GET", f"/api/v1/datasets/{dataset_id}/snapshots")]

    def get_snapshot(self, dataset_id: UUID | str, snapshot_id: UUID | str) -> Snapshot:
        path = f"/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}"
        return Snapshot.model_validate(self._t.json("GET", path))

    def compare(self, dataset_id: UUID | str, snapshot_id: UUID | str, other_id: UUID | str) -> dict[str, Any]:
        """Images added and removed, annotations changed, class deltas from one snapshot to another."""
        path = f"/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}/compare/{other_id}"
        result: dict[str, Any] = self._t.json("GET", path)
        return result

    def manifest(self, dataset_id: UUID | str, snapshot_id: UUID | str) -> dict[str, Any]:
        """The content-addressed manifest and the frozen split (`{"manifest", "splits"}`)."""
        result: dict[str, Any] = self._t.json("GET", f"/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}/manifest")
        return result

    def blob(self, dataset_id: UUID | str, snapshot_id: UUID | str, sha256: str) -> bytes:
        """One image, annotation or metadata file of the snapshot, checked against its sha256."""
        path = f"/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}/blobs/{sha256}"
        response = self._t.request("GET", path)
        if hashlib.sha256(response.content).hexdigest() != sha256:
            detail = f"blob {sha256} arrived with other bytes"
            raise ApiError(response.status_code, "checksum_mismatch", "Downloaded bytes do not match", detail)
        return response.content

    def download(
        self,
        dataset_id: UUID | str,
        snapshot_id: UUID | str,
        dest: Path | str,
        *,
        format: Literal["dice", "yolo", "coco"] = "dice",
        task: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Stream the snapshot as a zip to `dest` (a file, or a folder for the server's name)."""
        path = f"/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}/download"
        target, _ = self._t.download(path, Path(dest), params={"format": format, "task": task}, progress=progress)
        return target
