"""Composition root of the gateway app."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from vtp_gateway import __version__
from vtp_gateway.docs_page import PUBLIC_PATHS as DOCS_PATHS
from vtp_gateway.docs_page import docs_router
from vtp_gateway.health import aggregate
from vtp_gateway.openapi_merge import DocumentsUnavailable, fetch_documents, merge
from vtp_gateway.settings import GatewaySettings
from vtp_runtime.auth import optional_principal
from vtp_runtime.http.app import build_app
from vtp_runtime.http.openapi import HEALTH_RESPONSES
from vtp_runtime.http.problems import ProblemError
from vtp_runtime.service import ServiceRuntime


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(settings, __version__)
    client = httpx.AsyncClient()
    runtime.parts.on_shutdown.append(client.aclose)
    router = APIRouter()

    @router.get(
        "/api/v1/health",
        tags=["health"],
        summary="Status; every service and dependency for an admin token",
        responses=HEALTH_RESPONSES,
    )
    async def platform_health(request: Request) -> JSONResponse:
        caller = await optional_principal(request.scope, runtime.parts.verifier)
        # An admin's own token asks each service for its detail; anyone else learns only the status.
        headers = {"Authorization": request.headers["authorization"]} if caller and caller.is_admin else {}
        report = await aggregate(client, settings.health_targets, headers)
        status_code = 200 if report["status"] == "ok" else 503
        return JSONResponse(report if headers else {"status": report["status"]}, status_code=status_code)

    @router.get("/api/v1/openapi.json", tags=["docs"], summary="The OpenAPI document of every public route")
    async def openapi_document(request: Request) -> dict[str, Any]:
        headers = {"Authorization": request.headers["authorization"]}  # services want a token too
        try:
            documents = await fetch_documents(client, settings.health_targets, headers)
        except DocumentsUnavailable as exc:
            raise ProblemError(503, "openapi_unavailable", "API documents unavailable", str(exc)) from exc
        return merge(app.openapi(), documents)

    @router.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unrouted(path: str) -> None:
        # Reached only with a valid token (the auth middleware runs first).
        raise ProblemError(404, "not_found", "Not found", f"No API route /api/{path}.")

    runtime.parts.routers = [docs_router(), router]  # the docs page before the catch-all
    runtime.parts.public_paths = DOCS_PATHS
    app = build_app(runtime.parts)
    return app
