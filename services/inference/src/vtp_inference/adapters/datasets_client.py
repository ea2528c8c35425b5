"""Finds a dataset snapshot for a batch through the datasets service's public REST API.

The caller's own token is forwarded, so the datasets service applies the same project scoping
as for any other request: another project's snapshot answers 404 there, exactly like a missing one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class SnapshotRef:
    id: uuid.UUID
    dataset_id: uuid.UUID
    content_hash: str
    split_fingerprint: str


class DatasetsUnavailable(Exception):
    pass


class DatasetsClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def snapshot(self, authorization: str, snapshot_id: uuid.UUID) -> SnapshotRef | None:
        """The snapshot as the caller sees it; None when it sees none (missing, another project's, or
        a credential the datasets service does not take, such as an inference API key)."""
        try:
            response = await self._http.get(
                f"/api/v1/datasets/snapshots/{snapshot_id}", headers={"Authorization": authorization}
            )
        except httpx.HTTPError as exc:
            raise DatasetsUnavailable(str(exc)) from exc
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code != 200:
            raise DatasetsUnavailable(f"the datasets service answered {response.status_code}")
        body = response.json()
        return SnapshotRef(
            uuid.UUID(body["id"]), uuid.UUID(body["dataset_id"]), body["content_hash"], body["split_fingerprint"]
        )

    async def aclose(self) -> None:
        await self._http.aclose()
