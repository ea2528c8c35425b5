"""RFC 9457 problem details: every API error leaves as application/problem+json.

Each problem has a stable, machine-readable `code`; validation problems list
every error at once in `errors`, each with a JSON pointer into the request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_failed", "Validation failed"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemError(Exception):
    """Raise from a route or handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a problem document."""
    body: dict[str, Any] = {"type": f"https://vtp.dev/problems/{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A ready JSONResponse carrying a problem document."""
    return JSONResponse(
        problem_body(status, code, title, detail, errors, instance),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _pointer(loc: Sequence[Any]) -> str:
    return "#/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic/FastAPI errors as problem `errors` entries with JSON pointers."""
    return [
        {"pointer": _pointer(err.get("loc", ())), "code": err.get("type", "invalid"), "message": err.get("msg", "")}
        for err in raw
    ]


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.errors, request.url.path, exc.headers)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    detail = f"{len(errors)} problem(s) in the request"
    return problem_response(422, "validation_failed", "Validation failed", detail, errors, request.url.path)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, code, title, detail, None, request.url.path, headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal_error", "Internal server error", None, None, request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error the app can raise answer with problem+json."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
