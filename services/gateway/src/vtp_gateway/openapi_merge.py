"""``GET /api/v1/openapi.json``: every service's OpenAPI document merged into the platform's.

Each service documents its own routes; the gateway keeps only the paths it routes to that
service (a service's ``/health`` is not reachable through the gateway) and merges the
components. Two services that name different schemas alike keep both, the later one
prefixed with its service name.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

import httpx

from vtp_gateway.routes import SERVICE_ROUTES

TIMEOUT_SECONDS = 10.0
SCHEMA_REF = "#/components/schemas/"


class DocumentsUnavailable(Exception):
    """Some service did not hand over its document; the message names them."""


async def fetch_documents(
    client: httpx.AsyncClient, targets: Mapping[str, str], headers: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Each routed service's own document, fetched with the caller's token."""
    names = [name for name in SERVICE_ROUTES if name in targets]

    async def one(name: str) -> dict[str, Any] | None:
        try:
            response = await client.get(
                f"{targets[name].rstrip('/')}/openapi.json", headers=headers, timeout=TIMEOUT_SECONDS
            )
            document: dict[str, Any] = response.raise_for_status().json()
        except (httpx.HTTPError, ValueError):
            return None
        return document

    documents = await asyncio.gather(*(one(name) for name in names))
    missing = [name for name, document in zip(names, documents, strict=True) if document is None]
    if missing:
        raise DocumentsUnavailable(f"no OpenAPI document from {', '.join(missing)}")
    return {name: document for name, document in zip(names, documents, strict=True) if document is not None}


def merge(own: dict[str, Any], services: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The gateway's own ``/api`` routes and each service's routed paths, in one document."""
    merged: dict[str, Any] = {
        "openapi": own["openapi"],
        "info": {
            "title": "vtp platform API",
            "version": own["info"]["version"],
            "description": "Every public route of the platform, as served by the gateway. "
            "Send `Authorization: Bearer <token>`; only health needs none.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "security": own.get("security", []),
    }
    sources = [("gateway", own, ("/api/",))] + [
        (name, document, SERVICE_ROUTES[name]) for name, document in services.items()
    ]
    for name, document, prefixes in sources:
        document = _renamed(name, document, merged["components"]["schemas"])
        for path, item in document.get("paths", {}).items():
            if _routed(path, prefixes):
                merged["paths"][path] = item
        components = document.get("components", {})
        merged["components"]["schemas"].update(components.get("schemas", {}))
        merged["components"]["securitySchemes"].update(components.get("securitySchemes", {}))
    return merged


def _routed(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p if p.endswith("/") else p + "/") for p in prefixes)


def _renamed(service: str, document: dict[str, Any], taken: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with each schema whose name is taken by a different schema prefixed."""
    schemas = document.get("components", {}).get("schemas", {})
    prefix = "".join(part.capitalize() for part in service.split("-"))
    renames = {name: prefix + name for name, schema in schemas.items() if name in taken and taken[name] != schema}
    if not renames:
        return document
    document = _rewrite_refs(copy.deepcopy(document), renames)
    renamed = document["components"]["schemas"]
    for old, new in renames.items():
        if renamed[old].get("title") == old:  # generators name the model after its title
            renamed[old]["title"] = new
    document["components"]["schemas"] = {renames.get(n, n): s for n, s in renamed.items()}
    return document


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF) and ref[len(SCHEMA_REF) :] in renames:
            node["$ref"] = SCHEMA_REF + renames[ref[len(SCHEMA_REF) :]]
        for value in node.values():
            _rewrite_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renames)
    return node
