"""Pins a dataset snapshot for a job through the datasets service's public REST API.

The caller's own token is forwarded, so the datasets service applies the same
project scoping as for any other request; its errors become job-request problems.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

# Trainer task names -> the datasets API's task names.
DATASET_TASK = {"detect": "detection", "segment": "segmentation", "classify": "classification", "pose": "pose"}


@dataclass(frozen=True)
class PinnedSnapshot:
    snapshot_id: uuid.UUID
    tasks: list[str]
    content_hash: str
    split_fingerprint: str


class SnapshotProblem(Exception):
    """The dataset or snapshot cannot be used; `code` and `pointer` go into the 422 response."""

    def __init__(self, code: str, pointer: str, message: str) -> None:
        super().__init__(message)
        self.code, self.pointer = code, pointer


class DatasetsUnavailable(Exception):
    pass


class DatasetsClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def pin(self, token: str, dataset_id: uuid.UUID, snapshot_id: uuid.UUID | None, task: str) -> PinnedSnapshot:
        """The given snapshot, or a snapshot of the dataset's head taken now (idempotent by content)."""
        headers = {"Authorization": f"Bearer {token}"}
        base = f"/api/v1/datasets/{dataset_id}/snapshots"
        try:
            if snapshot_id is not None:
                response = await self._client.get(f"{base}/{snapshot_id}", headers=headers)
            else:
                response = await self._client.post(base, headers=headers)
        except httpx.HTTPError as exc:
            raise DatasetsUnavailable(str(exc)) from exc
        if response.status_code == 404:
            code = response.json().get("code", "")
            if code == "snapshot_not_found":
                raise SnapshotProblem("snapshot_not_found", "/snapshot_id", "no such snapshot of this dataset")
            raise SnapshotProblem("dataset_not_found", "/dataset_id", "no such dataset in this project")
        if response.status_code not in (200, 201):
            raise DatasetsUnavailable(f"datasets service answered {response.status_code}")
        body = response.json()
        pinned = PinnedSnapshot(
            uuid.UUID(body["id"]), list(body["tasks"]), body["content_hash"], body["split_fingerprint"]
        )
        if DATASET_TASK.get(task) not in pinned.tasks:
            raise SnapshotProblem(
                "dataset_lacks_task",
                "/task_type",
                f"the snapshot has annotations for {pinned.tasks}, not {DATASET_TASK.get(task, task)}",
            )
        return pinned

    async def aclose(self) -> None:
        await self._client.aclose()
