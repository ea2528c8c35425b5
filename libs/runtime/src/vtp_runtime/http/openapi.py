"""Each service's OpenAPI document, made to say what the API really does.

FastAPI documents errors as ``application/json`` with its own validation shape and knows
nothing of the auth middleware. :func:`install_openapi` fixes that for every route at
once: bearer auth (401, and 503 when tokens cannot be checked) on every route that is not
public, and every 422 as a problem document. What only some routes answer (403, 404, 409,
413, ...) each route declares with ``responses=problems(...)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from vtp_runtime.http.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = "#/components/schemas/Problem"
SECURITY_SCHEME = "bearer"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# FastAPI's own validation-error models; every 422 here is a Problem instead.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
# Set by json_body(); finish_document() moves them to the requestBody (replacing FastAPI's
# free-form object) and the components.
_BODY_KEY, _SCHEMAS_KEY = "x-vtp-request-body", "x-vtp-schemas"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details with a stable machine-readable `code`.",
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "description": "URI naming the problem type."},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "code": {"type": "string", "description": "Stable code, e.g. `dataset_not_found`."},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path."},
        "errors": {
            "type": "array",
            "description": "Every problem found in the request, each with a JSON pointer.",
            "items": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "pointer": {"type": "string", "description": "e.g. `#/body/name`"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "file": {"type": "string", "description": "The file of an uploaded archive at fault."},
                    "line": {"type": "integer", "description": "The 1-based line of `file` (a text file)."},
                },
            },
        },
    },
}

HEALTH_SCHEMA: dict[str, Any] = {
    "title": "Health",
    "description": "`status` for anyone; an admin token also gets each dependency's result.",
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok", "down"]}},
}
_HEALTH_REF = {"$ref": "#/components/schemas/Health"}  # one named model for both answers
HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Everything is up", "content": {"application/json": {"schema": _HEALTH_REF}}},
    503: {"description": "Something is down", "content": {"application/json": {"schema": _HEALTH_REF}}},
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of a problem answer."""
    return {
        "description": description or HTTPStatus(status).phrase,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }


def problems(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the problem statuses it answers beyond auth and validation.

    ``described`` gives a status a specific description: ``problems(404, s409="Name taken")``.
    """
    out: dict[int | str, dict[str, Any]] = {s: problem_response(s) for s in statuses}
    for key, text in described.items():
        status = int(key.lstrip("s"))
        out[status] = problem_response(status, text)
    return out


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra=`` for a route that parses a JSON body by hand: document it as ``model``.

    Such routes take the raw body so shape and business rules can be reported together.
    The model's schemas travel in the operation until :func:`finish_document` moves them
    into the components.
    """
    _, top = models_json_schema([(model, "validation")], ref_template="#/components/schemas/{model}")
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        _BODY_KEY: {"required": True, "content": {"application/json": {"schema": ref}}},
        _SCHEMAS_KEY: top.get("$defs", {}),
    }


def multipart_body(schema: dict[str, Any], encoding: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra=`` for a route that streams a ``multipart/form-data`` body itself."""
    media: dict[str, Any] = {"schema": schema}
    if encoding:
        media["encoding"] = encoding
    return {"requestBody": {"required": True, "content": {"multipart/form-data": media}}}


def binary_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that streams bytes (use with ``response_class=Response``)."""
    schema = {"type": "string", "format": "binary", "contentMediaType": media_type}
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


def install_openapi(app: FastAPI, public_paths: Iterable[str]) -> None:
    """Serve a document with problem+json errors and bearer auth on every non-public route."""
    public = frozenset(public_paths)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = finish_document(document, public)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish_document(document: dict[str, Any], public: frozenset[str]) -> dict[str, Any]:
    """Problem responses, security and the Problem schema, applied to every operation."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["Health"] = HEALTH_SCHEMA
    components["securitySchemes"] = {
        SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "description": "A project API token (`vtp_...`)."}
    }
    document["security"] = [{SECURITY_SCHEME: []}]
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = problem_response(422)
            if path in public:
                operation["security"] = []  # anyone may call it; a token only adds detail
            else:
                responses.setdefault("401", problem_response(401, "No, unknown or revoked token"))
                responses.setdefault("503", problem_response(503))
            if _BODY_KEY in operation:
                operation["requestBody"] = operation.pop(_BODY_KEY)
            if "requestBody" in operation:  # FastAPI's answer to a body it cannot decode
                responses.setdefault("400", problem_response(400, "The body could not be parsed"))
            operation["responses"] = dict(sorted(responses.items()))
            for name, schema in operation.pop(_SCHEMAS_KEY, {}).items():
                schemas.setdefault(name, schema)
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return document

