"""API keys that call deployments (`/api/v1/keys`, `/api/v1/deployments/{id}/keys`); project tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from vtp_client._base import Group, Page, Resource

__all__ = ["ApiKey", "ApiKeyCreated", "Keys", "Limits"]


class Limits(Resource):
    """Each limit absent (None) is unlimited."""

    per_second: int | None = None
    per_minute: int | None = None
    concurrent: int | None = None
    images_per_day: int | None = None
    images_per_month: int | None = None


class ApiKey(Resource):
    id: UUID
    name: str
    prefix: str
    status: str
    """active, revoked or expired"""
    scopes: list[str] = []
    deployments: list[UUID] | None = None
    """The deployments it reaches; None: all of the project's."""
    limits: Limits = Limits()
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_to: UUID | None = None


class ApiKeyCreated(ApiKey):
    secret: str
    """The key (`vtpk_...`), shown only in this answer."""


def _base(deployment_id: UUID | str | None) -> str:
    return f"/api/v1/deployments/{deployment_id}/keys" if deployment_id else "/api/v1/keys"


class Keys(Group):
    """`client.keys`: with `deployment_id`, the routes of that deployment's keys; without, the project's."""

    def create(
        self,
        name: str,
        *,
        deployment_id: UUID | str | None = None,
        deployments: Sequence[UUID | str] | None = None,
        scopes: Sequence[str] = ("predict",),
        expires_at: datetime | None = None,
        limits: Limits | dict[str, int | None] | None = None,
    ) -> ApiKeyCreated:
        """A key of one deployment (`deployment_id`), or project-wide (all deployments, or `deployments`)."""
        body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if deployments is not None and deployment_id is None:
            body["deployments"] = [str(d) for d in deployments]
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        if limits:
            body["limits"] = limits.model_dump(exclude_none=True) if isinstance(limits, Limits) else limits
        return ApiKeyCreated.model_validate(self._t.json("POST", _base(deployment_id), json=body))

    def list(self, *, deployment_id: UUID | str | None = None, limit: int = 50, offset: int = 0) -> Page[ApiKey]:
        """The project's keys, newest first; with `deployment_id`, those that reach it."""
        params = {"limit": limit, "offset": offset}
        return Page[ApiKey].model_validate(self._t.json("GET", _base(deployment_id), params=params))

    def get(self, key_id: UUID | str, *, deployment_id: UUID | str | None = None) -> ApiKey:
        return ApiKey.model_validate(self._t.json("GET", f"{_base(deployment_id)}/{key_id}"))

    def revoke(self, key_id: UUID | str, *, deployment_id: UUID | str | None = None) -> None:
        """Revoke: every replica refuses the key within a second."""
        self._t.request("DELETE", f"{_base(deployment_id)}/{key_id}")

    def rotate(
        self, key_id: UUID | str, *, overlap_seconds: int | None = None, deployment_id: UUID | str | None = None
    ) -> ApiKeyCreated:
        """A successor key (its secret shown once); the old one keeps working for `overlap_seconds`."""
        body = {"overlap_seconds": overlap_seconds} if overlap_seconds is not None else None
        return ApiKeyCreated.model_validate(self._t.json("POST", f"{_base(deployment_id)}/{key_id}/rotate", json=body))

    def limits(self, deployment_id: UUID | str) -> Limits:
        """The deployment's own limits (every caller together)."""
        return Limits.model_validate(self._t.json("GET", f"/api/v1/deployments/{deployment_id}/limits"))

    def set_limits(self, deployment_id: UUID | str, limits: Limits | dict[str, int | None]) -> Limits:
        """Replace the deployment's limits (a limit left out is unlimited)."""
        body = limits.model_dump(exclude_none=True) if isinstance(limits, Limits) else limits
        path = f"/api/v1/deployments/{deployment_id}/limits"
        return Limits.model_validate(self._t.json("PUT", path, json=body))
