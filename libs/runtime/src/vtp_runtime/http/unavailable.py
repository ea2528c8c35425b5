"""A request that needs a dependency which is down answers 503 problem+json, not 500.

While PostgreSQL or Redis is away (restarting, failing over, unreachable), a route that needs it
fails with a connection error from SQLAlchemy, asyncpg or redis. That is the platform's outage,
not a bug in the request: the client gets 503 `dependency_unavailable` with `Retry-After`, the
connection stays usable, and the service recovers by itself once the dependency is back (the
pools reconnect). An error of these types that is not transient (a constraint violation, bad SQL)
stays a 500.
"""

from __future__ import annotations

import logging

import redis.exceptions as redis_errors
import sqlalchemy.exc as sa_errors
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from vtp_runtime.http.problems import problem_response
from vtp_runtime.transient import is_transient

_log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
# The types a route sees when a dependency is away; each is checked with is_transient.
_DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    sa_errors.DBAPIError,  # OperationalError, InterfaceError (asyncpg errors wrapped)
    sa_errors.DisconnectionError,
    sa_errors.TimeoutError,  # no pooled connection came free in time
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    ConnectionError,  # refused or reset while connecting (asyncpg's connect is not wrapped)
    TimeoutError,
)


async def _on_dependency_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_transient(exc):
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "Internal server error", None, None, request.url.path)
    _log.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        503,
        "dependency_unavailable",
        "A dependency is unavailable",
        "A database or cache this request needs is unavailable; retry later.",
        None,
        request.url.path,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_dependency_handlers(app: FastAPI) -> None:
    """Answer 503 problem+json when a route fails because a dependency is down."""
    for error_type in _DEPENDENCY_ERRORS:
        app.add_exception_handler(error_type, _on_dependency_error)
