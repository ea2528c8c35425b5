"""The FastAPI app every service builds: problem+json, auth, ``/health``, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from vtp_runtime.auth import AuthMiddleware, TokenVerifier
from vtp_runtime.health import HealthCheck, health_report
from vtp_runtime.http.problems import install_problem_handlers

_log = logging.getLogger(__name__)
Hook = Callable[[], Awaitable[None]]
BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
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
    background: list[BackgroundTask] = field(default_factory=list)
    ticket_verifier: TokenVerifier | None = None  # WebSocket `?ticket=` (see AuthMiddleware)


def build_app(parts: AppParts) -> FastAPI:
    """A FastAPI app with the platform's cross-cutting behaviour wired in."""

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
        tasks = [asyncio.create_task(run(stop), name=f"{parts.service}-bg") for run in parts.background]
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

    app = FastAPI(title=f"vtp {parts.service}", version=parts.version, lifespan=lifespan)
    install_problem_handlers(app)
    app.add_middleware(AuthMiddleware, verifier=parts.verifier, ticket_verifier=parts.ticket_verifier)

    @app.get("/health", tags=["health"], summary="This service and its dependencies")
    async def health() -> JSONResponse:
        report = await health_report(parts.service, parts.version, parts.checks)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    for router in parts.routers:
        app.include_router(router)
    return app
