"""Resolves and fetches exports through the export service's public REST API.

The caller's own token is forwarded, so the export service applies its project scoping:
another project's export answers 404 there and `export_not_found` here, exactly like a
missing one. The package is verified against the sha256 the export service recorded.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx


class ExportNotFound(Exception):
    pass


class UpstreamUnavailable(Exception):
    pass


class PackageRejected(Exception):
    """The package could not be fetched intact; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ExportsClient:
    def __init__(self, export_url: str, timeout: float = 60.0) -> None:
        self._http = httpx.AsyncClient(base_url=export_url.rstrip("/"), timeout=timeout)

    async def get(self, token: str, export_id: uuid.UUID) -> dict[str, Any]:
        try:
            response = await self._http.get(f"/api/v1/exports/{export_id}", headers=_auth(token))
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"export service: {exc}") from exc
        if response.status_code in (404, 422):
            raise ExportNotFound(str(export_id))
        if response.status_code != 200:
            raise UpstreamUnavailable(f"export service answered {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def download(self, token: str, export: dict[str, Any], dest: Path, max_bytes: int) -> None:
        """Stream the package to `dest`; its sha256 and size must be those the export recorded."""
        artifact = export.get("artifact") or {}
        digest, size = hashlib.sha256(), 0
        try:
            async with self._http.stream(
                "GET", f"/api/v1/exports/{export['id']}/download", headers=_auth(token)
            ) as response:
                if response.status_code != 200:
                    raise PackageRejected("EXPORT_UNAVAILABLE", f"download answered {response.status_code}")
                with dest.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise PackageRejected("PACKAGE_TOO_LARGE", f"the package exceeds {max_bytes} bytes")
                        digest.update(chunk)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise PackageRejected("EXPORT_UNAVAILABLE", f"download failed: {exc}") from exc
        if digest.hexdigest() != artifact.get("sha256") or size != artifact.get("size_bytes"):
            raise PackageRejected("PACKAGE_INTEGRITY", "the package's sha256 or size is not what the export recorded")

    async def aclose(self) -> None:
        await self._http.aclose()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
