"""GET /api/v1/deployments/{id}/usage and GET /api/v1/usage: JSON, or CSV (`format=csv`, `Accept: text/csv`)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from vtp_inference.domain.keys import USAGE_READ, KeyPrincipal
from vtp_inference.domain.model import DeploymentNotFound, Problem, RequestRefused
from vtp_inference.domain.usage import Cell
from vtp_inference.domain.usage_query import UsageQuery, parse_query
from vtp_inference.entrypoints.access_http import access_problem
from vtp_inference.entrypoints.http import not_found, refused
from vtp_inference.service_layer import usage_reports
from vtp_inference.service_layer.access import Access, AccessError, KeyForbidden
from vtp_inference.service_layer.metering import UsageStore
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import problems

Caller = Annotated[Principal, Depends(current_principal)]
# Raw strings: every parameter is checked by parse_query, so all problems come back at once.
From = Annotated[str | None, Query(alias="from", description="ISO 8601; default: one period span before `to`")]
To = Annotated[str | None, Query(description="ISO 8601, exclusive; default: now")]
Grain = Annotated[str | None, Query(description="minute, hour (default) or day")]
KeyId = Annotated[str | None, Query(description="only this API key's usage")]
Format = Annotated[str | None, Query(description="csv: the series as CSV (as `Accept: text/csv`)")]
CSV_COLUMNS = (
    "start", "requests", "images", "errors", "errors_by_code",
    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "compute_seconds", "bytes_in",
)  # fmt: skip
FORMATS = (None, "", "json", "csv")
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV when asked for"}
}


def _query(start: str | None, end: str | None, grain: str | None, key_id: str | None, fmt: str | None) -> UsageQuery:
    found = [] if fmt in FORMATS else [Problem("/format", "invalid_parameter", "format is json or csv")]
    query: UsageQuery | None = None
    try:
        query = parse_query(start, end, grain, key_id, datetime.now(UTC))
    except RequestRefused as exc:
        found = exc.problems + found
    if found or query is None:
        raise refused(found, "Invalid usage query")
    return query


def _csv(report: usage_reports.UsageReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for start, cell in report.series:
        s: dict[str, Any] = cell.summary()
        latency = s["latency_ms"]
        codes = ";".join(f"{code}={n}" for code, n in s["errors_by_code"].items())
        writer.writerow([
            start.isoformat(), s["requests"], s["images"], s["errors"], codes,
            latency["p50"], latency["p95"], latency["p99"], s["compute_seconds"], s["bytes_in"],
        ])  # fmt: skip
    return out.getvalue()


def _json(report: usage_reports.UsageReport, scope: dict[str, Any], by: str) -> dict[str, Any]:
    q = report.query

    def named(key: uuid.UUID | None, cell: Cell) -> dict[str, Any]:
        return {by: str(key) if key else None, **cell.summary()}

    return {
        **scope,
        "granularity": str(q.granularity),
        "from": q.start.isoformat(),
        "to": q.end.isoformat(),
        "key_id": str(q.key_id) if q.key_id else None,
        "series": [{"start": start.isoformat(), **cell.summary()} for start, cell in report.series],
        "total": report.total.summary(),
        f"by_{by.removesuffix('_id')}": [named(k, c) for k, c in sorted(report.by.items(), key=lambda i: str(i[0]))],
    }


def _answer(request: Request, fmt: str | None, report: usage_reports.UsageReport, body: dict[str, Any]) -> Any:
    wants_csv = fmt == "csv" or (fmt in (None, "") and "text/csv" in request.headers.get("accept", ""))
    if not wants_csv:
        return body
    headers = {"Content-Disposition": 'attachment; filename="usage.csv"'}
    return Response(_csv(report), media_type="text/csv; charset=utf-8", headers=headers)


def _visible(caller: Principal) -> Callable[[uuid.UUID], bool] | None:
    """What an API key may read of the project's usage (403 without `usage:read`); a token: all of it."""
    if not isinstance(caller, KeyPrincipal):
        return None
    if USAGE_READ not in caller.scopes:
        raise access_problem(KeyForbidden(f"the key lacks the {USAGE_READ!r} scope"))
    return caller.key.reaches


def build_usage_router(new_uow: NewUow, store: UsageStore, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["usage"])

    @router.get(
        "/deployments/{deployment_id}/usage",
        summary="A deployment's usage per minute, hour or day (per key with key_id), as JSON or CSV",
        responses={**CSV_RESPONSE, **problems(403, 404, 422)},
    )
    async def deployment(
        deployment_id: uuid.UUID,
        request: Request,
        caller: Caller,
        start: From = None,
        to: To = None,
        granularity: Grain = None,
        key_id: KeyId = None,
        format: Format = None,  # the query parameter's public name
    ) -> Any:
        try:  # an API key needs `usage:read` and to reach the deployment
            access.require_scope(caller, USAGE_READ, deployment_id)
        except AccessError as exc:
            raise access_problem(exc) from exc
        query = _query(start, to, granularity, key_id, format)
        try:
            report = await usage_reports.deployment_usage(new_uow, store, caller.project_id, deployment_id, query)
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc
        return _answer(request, format, report, _json(report, {"deployment_id": str(deployment_id)}, "key_id"))

    @router.get(
        "/usage",
        summary="The project's usage over every deployment, with a breakdown per deployment, as JSON or CSV",
        responses={**CSV_RESPONSE, **problems(403, 422)},
    )
    async def project(
        request: Request,
        caller: Caller,
        start: From = None,
        to: To = None,
        granularity: Grain = None,
        key_id: KeyId = None,
        format: Format = None,
    ) -> Any:
        visible = _visible(caller)
        query = _query(start, to, granularity, key_id, format)
        report = await usage_reports.project_usage(store, caller.project_id, query, visible)
        return _answer(request, format, report, _json(report, {"project_id": str(caller.project_id)}, "deployment_id"))

    return router
