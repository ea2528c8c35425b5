"""``GET /metrics``: the process's counters in the Prometheus text format, for admin tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import problems
from vtp_runtime.http.problems import ProblemError
from vtp_runtime.metrics import METRICS, Metrics
from vtp_runtime.supervision import Supervisor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_router(supervisor: Supervisor, metrics: Metrics = METRICS) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/metrics",
        summary="Counters (dead letters, background restarts) in the Prometheus text format; admin token",
        response_class=PlainTextResponse,
        responses=problems(403),
    )
    async def scrape(caller: Annotated[Principal, Depends(current_principal)]) -> PlainTextResponse:
        if not caller.is_admin:  # platform-wide internals, not a project's data
            raise ProblemError(403, "admin_required", "Admin token required")
        return PlainTextResponse(metrics.render(supervisor.samples()), media_type=CONTENT_TYPE)

    return router
