"""A bug answers problem+json 500 and leaves the keep-alive connection usable.

Starlette's ServerErrorMiddleware sends its 500 and then re-raises, and uvicorn closes the
connection on any exception that leaves the app. A proxy that pooled that connection (Caddy)
then fails its next request on it: a POST it may not retry becomes an empty 502. This
middleware, just inside ServerErrorMiddleware, answers and returns normally instead.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vtp_runtime import failpoints
from vtp_runtime.http.problems import problem_response

_log = logging.getLogger(__name__)
BUG_FAILPOINT = "http.bug"
BUG_HEADER = b"x-vtp-failpoint"


class UnhandledErrorMiddleware:
    """Turns an exception raised before the response started into a problem+json 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                # Part of a body is out: only closing the connection tells the client it is cut short.
                raise
            _log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            response = problem_response(500, "internal_error", "Internal server error", None, None, scope.get("path"))
            await response(scope, receive, send)


class InjectedBug(RuntimeError):
    """What the `http.bug` failpoint raises: a stand-in for any bug in a route."""


class BugFailpointMiddleware:
    """Tests only (``VTP_FAILPOINTS=http.bug``): a request with ``X-VTP-Failpoint: http.bug`` reads
    its body, as a route would, then raises, so a test can send a bug through the real stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (BUG_HEADER, BUG_FAILPOINT.encode()) in scope.get("headers", []):
            while (await receive()).get("more_body", False):
                pass
            raise InjectedBug(f"failpoint {BUG_FAILPOINT} on {scope.get('path')}")
        await self.app(scope, receive, send)


def install_bug_failpoint(app: Starlette) -> None:
    """Add the failpoint middleware when it is on; call before the auth middleware is added."""
    if failpoints.active(BUG_FAILPOINT):
        app.add_middleware(BugFailpointMiddleware)
