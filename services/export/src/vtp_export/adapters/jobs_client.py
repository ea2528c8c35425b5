"""Resolves a job's recorded checkpoint through the jobs and datasets services' public REST APIs.

The caller's own token is forwarded, so those services apply the same project scoping as for
any other request: another project's job answers 404 there, and `checkpoint_not_found` here,
exactly like a missing one. Only checkpoints the platform recorded (uri + sha256) are exported.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class ResolvedCheckpoint:
    job_id: uuid.UUID
    framework: str
    task_type: str
    checkpoint: dict[str, Any]  # uri, sha256, size_bytes, kind, epoch
    default_imgsz: int
    source: dict[str, Any]  # snapshot_id, snapshot_content_hash, split_fingerprint, split


class CheckpointNotFound(Exception):
    """The job or the named checkpoint does not exist for this caller; `pointer` names the field."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer


class UpstreamUnavailable(Exception):
    pass


class JobsClient:
    def __init__(self, jobs_url: str, datasets_url: str, timeout: float = 30.0) -> None:
        self._jobs = httpx.AsyncClient(base_url=jobs_url.rstrip("/"), timeout=timeout)
        self._datasets = httpx.AsyncClient(base_url=datasets_url.rstrip("/"), timeout=timeout)

    async def resolve(self, token: str, job_id: uuid.UUID, checkpoint: str | int) -> ResolvedCheckpoint:
        job = await self._get(self._jobs, f"/api/v1/jobs/{job_id}", token)
        if job is None:
            raise CheckpointNotFound("/job_id", "no such job in this project")
        found = _pick(job.get("checkpoints") or {}, checkpoint)
        if found is None:
            raise CheckpointNotFound("/checkpoint", f"job {job_id} has no recorded checkpoint {checkpoint!r}")
        snapshot = await self._get(
            self._datasets, f"/api/v1/datasets/{job['dataset_id']}/snapshots/{job['snapshot_id']}", token
        )
        if snapshot is None:
            raise CheckpointNotFound("/job_id", "the job's pinned dataset snapshot is gone")
        imgsz = (job.get("config") or {}).get("imgsz", 640)
        return ResolvedCheckpoint(
            job_id=job_id,
            framework=str(job.get("framework", "ultralytics")),
            task_type=str(job["task_type"]),
            checkpoint=found,
            default_imgsz=max(32, (int(imgsz) + 31) // 32 * 32) if isinstance(imgsz, int) else 640,
            source={
                "snapshot_id": str(job["snapshot_id"]),
                "snapshot_content_hash": snapshot.get("content_hash"),
                "split_fingerprint": snapshot.get("split_fingerprint"),
                "split": job.get("split"),
            },
        )

    async def _get(self, client: httpx.AsyncClient, path: str, token: str) -> dict[str, Any] | None:
        try:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"{client.base_url}: {exc}") from exc
        if response.status_code in (404, 422):  # 422: a malformed id the other side refuses
            return None
        if response.status_code != 200:
            raise UpstreamUnavailable(f"{client.base_url}{path} answered {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def aclose(self) -> None:
        await self._jobs.aclose()
        await self._datasets.aclose()


def _pick(checkpoints: dict[str, dict[str, Any]], wanted: str | int) -> dict[str, Any] | None:
    """`best`, `last`, or a recorded epoch (whichever of best/last holds that epoch)."""
    if isinstance(wanted, str):
        info = checkpoints.get(wanted)
        kind = wanted
    else:
        kind = f"epoch-{wanted}"
        info = next((c for c in checkpoints.values() if c.get("epoch") == wanted), None)
    if not info or not info.get("uri") or not info.get("sha256"):
        return None
    return {
        "uri": info["uri"],
        "sha256": info["sha256"],
        "size_bytes": int(info.get("size_bytes", 0)),
        "kind": kind,
        "epoch": info.get("epoch"),
    }
