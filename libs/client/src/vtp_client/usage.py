"""Deployments' usage: requests, images, errors, latency, compute (`/api/v1/deployments/{id}/usage`, `/usage`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from vtp_client._base import Group, Resource

__all__ = ["Usage", "UsageApi", "UsageFigures"]


class UsageFigures(Resource):
    requests: int = 0
    images: int = 0
    errors: int = 0
    errors_by_code: dict[str, int] = {}
    latency_ms: dict[str, float | None] = {}
    """p50, p95 and p99 in milliseconds (None without requests)."""
    compute_seconds: float = 0.0
    bytes_in: int = 0


class UsagePoint(UsageFigures):
    start: datetime


class Usage(Resource):
    """A usage report: a series per minute, hour or day, the total, and a breakdown (`by_key` or `by_deployment`)."""

    granularity: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    key_id: UUID | None = None
    deployment_id: UUID | None = None
    project_id: UUID | None = None
    series: list[UsagePoint] = []
    total: UsageFigures
    by_key: list[dict[str, Any]] | None = None
    by_deployment: list[dict[str, Any]] | None = None


def _params(
    start: datetime | str | None, end: datetime | str | None, granularity: str | None, key_id: UUID | str | None
) -> dict[str, Any]:
    def iso(moment: datetime | str | None) -> str | None:
        return moment.isoformat() if isinstance(moment, datetime) else moment

    return {"from": iso(start), "to": iso(end), "granularity": granularity, "key_id": key_id and str(key_id)}


class UsageApi(Group):
    """`client.usage`. Times are ISO 8601 (timezone-aware datetimes are sent as such); granularity minute/hour/day."""

    def deployment(
        self,
        deployment_id: UUID | str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        granularity: str | None = None,
        key_id: UUID | str | None = None,
    ) -> Usage:
        """One deployment's usage (per key in `by_key`; only one key's with `key_id`)."""
        params = _params(start, end, granularity, key_id)
        return Usage.model_validate(self._t.json("GET", f"/api/v1/deployments/{deployment_id}/usage", params=params))

    def project(
        self,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        granularity: str | None = None,
        key_id: UUID | str | None = None,
    ) -> Usage:
        """The project's usage over every deployment, with `by_deployment`."""
        params = _params(start, end, granularity, key_id)
        return Usage.model_validate(self._t.json("GET", "/api/v1/usage", params=params))

    def csv(
        self,
        deployment_id: UUID | str | None = None,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        granularity: str | None = None,
        key_id: UUID | str | None = None,
    ) -> str:
        """The series as CSV (a deployment's, or the project's without `deployment_id`)."""
        path = f"/api/v1/deployments/{deployment_id}/usage" if deployment_id else "/api/v1/usage"
        params = _params(start, end, granularity, key_id) | {"format": "csv"}
        return self._t.request("GET", path, params=params).text
