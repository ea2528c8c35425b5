"""The FastAPI app every service builds: problem+json, auth, ``/health``, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from vtp_runtime import telemetry
from vtp_runtime.auth import AuthMiddleware, TokenVerifier, optional_principal
from vtp_runtime.auth.middleware import PUBLIC_PATHS, ScopedVerifier
from vtp_runtime.health import HealthCheck, health_report
from vtp_runtime.http.metrics_route import metrics_router
from vtp_runtime.http.openapi import HEALTH_RESPONSES, install_openapi
from vtp_runtime.http.problems import install_problem_handlers
from vtp_runtime.http.trace_middleware import TraceMiddleware
from vtp_runtime.http.unavailable import install_dependency_handlers
from vtp_runtime.http.unhandled import UnhandledErrorMiddleware, install_bug_failpoint
from vtp_runtime.supervision import Background, Supervisor
from vtp_runtime.supervision import BackgroundTask as BackgroundTask  # re-exported

_log = logging.getLogger(__name__)
Hook = Callable[[], Awaitable[None]]
# Young collections after 50,000 net allocations instead of 700: a service allocates fast and
# keeps little, and each full collection is a pause every open request or socket waits for.
GC_THRESHOLDS = (50_000, 10, 10)


@dataclass
class AppParts:
    """What a service's composition root hands to :func:`build_app`."""

    service: str
    version: str
    verifier: TokenVerifier
    routers: Sequence[APIRouter] = ()
    checks: Sequence[HealthCheck] = ()
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    # Each runs under `supervisor` (restart with backoff; health 503 naming one that keeps failing).
    background: list[Background] = field(default_factory=list)
    supervisor: Supervisor = field(default_factory=Supervisor)
    ticket_verifier: TokenVerifier | None = None  # WebSocket `?ticket=` (see AuthMiddleware)
    public_paths: Sequence[str] = ()  # beyond health: routes that answer without a token
    scoped_verifier: ScopedVerifier | None = None  # a second credential kind on some paths (inference keys)


def build_app(parts: AppParts) -> FastAPI:
    """A FastAPI app with the platform's cross-cutting behaviour wired in."""

    parts.checks = [*parts.checks, parts.supervisor.health_check()]
    telemetry.configure(parts.service)  # spans exported only with OTEL_EXPORTER_OTLP_ENDPOINT

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in parts.on_startup:
            await hook()
        # Everything alive now (modules, the app, pools) lives as long as the process. Freezing it
        # keeps full collections from rescanning it: in the notifier with 500 sockets those scans
        # were 140-190 ms pauses, the whole tail of the live feed's latency.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        stop = asyncio.Event()
        tasks = parts.supervisor.start(parts.background, stop)
        _log.info("%s started", parts.service)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for hook in reversed(parts.on_shutdown):
                try:
                    await hook()
                except Exception:  # keep shutting the rest down
                    _log.exception("shutdown hook failed")

    # No per-service /docs or /redoc: they load assets from a CDN and cannot send a token; the
    # gateway serves one offline docs page for the merged document (`/api/docs`).
    app = FastAPI(title=f"vtp {parts.service}", version=parts.version, lifespan=lifespan, docs_url=None, redoc_url=None)
    public = PUBLIC_PATHS | frozenset(parts.public_paths)
    install_openapi(app, public)
    install_problem_handlers(app)
    install_dependency_handlers(app)  # a database or cache that is down: 503, not 500
    install_bug_failpoint(app)  # tests only; inside auth, like a route
    app.add_middleware(
        AuthMiddleware,
        verifier=parts.verifier,
        public_paths=public,
        ticket_verifier=parts.ticket_verifier,
        scoped_verifier=parts.scoped_verifier,
    )
    app.add_middleware(UnhandledErrorMiddleware)  # covers the auth middleware too
    app.add_middleware(TraceMiddleware)  # outermost: every answer, errors included, carries `traceparent`

    @app.get(
        "/health",
        tags=["health"],
        summary="Status; each dependency's detail only for an admin token",
        responses=HEALTH_RESPONSES,
    )
    async def health(request: Request) -> JSONResponse:
        report = await health_report(parts.service, parts.version, parts.checks)
        status_code = 200 if report["status"] == "ok" else 503
        caller = await optional_principal(request.scope, parts.verifier)
        if caller is None or not caller.is_admin:  # dependency names and errors are internals
            return JSONResponse({"status": report["status"]}, status_code=status_code)
        return JSONResponse(report, status_code=status_code)

    app.include_router(metrics_router(parts.supervisor))
    for router in parts.routers:
        app.include_router(router)
    return app
