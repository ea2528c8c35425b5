"""Exports of trained checkpoints and their packages (`/api/v1/exports`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID

from vtp_client._base import Group, Page, Resource
from vtp_client.transport import Progress

__all__ = ["TERMINAL_EXPORT_STATUSES", "Export", "Exports"]

TERMINAL_EXPORT_STATUSES = frozenset({"succeeded", "failed"})


class Export(Resource):
    id: UUID
    job_id: UUID
    version: int
    name: str
    format: str
    options: dict[str, Any] = {}
    task_type: str
    checkpoint: dict[str, Any] = {}
    status: str
    stage: str | None = None
    attempt: int = 0
    is_default: bool = False
    artifact: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    metadata: dict[str, Any] = {}
    error: dict[str, Any] | None = None
    timings: dict[str, Any] = {}

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_EXPORT_STATUSES


class Exports(Group):
    """`client.exports`. A format or option the platform cannot make raises `ApiError` 422 with the reasons."""

    def capabilities(self) -> dict[str, Any]:
        """Per framework and task: formats, their options, and whether this deployment can make them now."""
        caps: dict[str, Any] = self._t.json("GET", "/api/v1/exports/capabilities")
        return caps

    def create(
        self,
        job_id: UUID | str,
        format: str = "onnx",
        *,
        checkpoint: str | int = "best",
        options: dict[str, Any] | None = None,
    ) -> Export:
        """Export a job's checkpoint (`best`, `last` or an epoch number).

        The same checkpoint, format and options answer the existing export, so this is retried.
        """
        body = {"job_id": str(job_id), "format": format, "checkpoint": checkpoint, "options": options or {}}
        return Export.model_validate(self._t.json("POST", "/api/v1/exports", json=body, idempotent=True))

    def list(
        self,
        *,
        job_id: UUID | str | None = None,
        format: str | None = None,
        status: str | None = None,
        default: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Export]:
        params = {
            "job_id": job_id and str(job_id),
            "format": format,
            "status": status,
            "default": default,
            "limit": limit,
            "offset": offset,
        }
        return Page[Export].model_validate(self._t.json("GET", "/api/v1/exports", params=params))

    def get(self, export_id: UUID | str) -> Export:
        return Export.model_validate(self._t.json("GET", f"/api/v1/exports/{export_id}"))

    def wait(self, export_id: UUID | str, *, timeout: float = 1800.0, poll: float = 1.0) -> Export:
        """Poll until succeeded or failed; `TimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            export = self.get(export_id)
            if export.finished:
                return export
            if time.monotonic() >= deadline:
                raise TimeoutError(f"export {export_id} still {export.status} ({export.stage}) after {timeout:.0f} s")
            time.sleep(poll)

    def set_default(self, export_id: UUID | str) -> Export:
        """Make this the job's default export (setting it twice changes nothing, so retried)."""
        path = f"/api/v1/exports/{export_id}/default"
        return Export.model_validate(self._t.json("POST", path, idempotent=True))

    def delete(self, export_id: UUID | str) -> None:
        """Delete the export; a running one is stopped."""
        self._t.request("DELETE", f"/api/v1/exports/{export_id}")

    def download(self, export_id: UUID | str, dest: Path | str, *, progress: Progress | None = None) -> Path:
        """Stream the package zip to `dest` (a file, or a folder for the server's name), sha256 checked."""
        target, _ = self._t.download(f"/api/v1/exports/{export_id}/download", Path(dest), progress=progress)
        return target
