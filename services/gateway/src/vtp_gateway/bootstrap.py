"""Composition root of the gateway app."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from vtp_gateway import __version__
from vtp_gateway.health import aggregate
from vtp_gateway.settings import GatewaySettings
from vtp_runtime.http.app import build_app
from vtp_runtime.http.problems import ProblemError
from vtp_runtime.service import ServiceRuntime


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(settings, __version__)
    client = httpx.AsyncClient()
    runtime.parts.on_shutdown.append(client.aclose)
    router = APIRouter()

    @router.get("/api/v1/health", tags=["health"], summary="Every service and dependency")
    async def platform_health() -> JSONResponse:
        report = await aggregate(client, settings.health_targets)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    @router.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unrouted(path: str) -> None:
        # Reached only with a valid token (the auth middleware runs first).
        raise ProblemError(404, "not_found", "Not found", f"No API route /api/{path}.")

    runtime.parts.routers = [router]
    return build_app(runtime.parts)
