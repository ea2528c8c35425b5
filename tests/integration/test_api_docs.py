"""The merged OpenAPI document and the docs page, through the gateway."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from vtp_gateway.routes import SERVICE_ROUTES

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def _document(admin: httpx.Client) -> dict[str, Any]:
    response = admin.get("/api/v1/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def test_the_merged_document_needs_a_token(gateway: httpx.Client) -> None:
    response = gateway.get("/api/v1/openapi.json")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


def test_the_merged_document_is_valid_openapi_3_and_covers_every_service(admin: httpx.Client) -> None:
    document = _document(admin)
    validate(document)  # type: ignore[arg-type]
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    for path in (
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/api/v1/projects",  # identity
        "/api/v1/jobs",  # jobs
        "/api/v1/datasets",  # datasets
        "/api/v1/subscriptions",  # notifier
        "/api/v1/ws/tickets",
    ):
        assert path in paths
    # Only what the gateway routes: a service's own /health or /metrics is not reachable through it.
    routed = tuple(prefix for prefixes in SERVICE_ROUTES.values() for prefix in prefixes)
    assert all(path.startswith(("/api/v1/health", "/api/v1/openapi.json", *routed)) for path in paths)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A project API token (`vtp_...`).",
    }


def test_every_error_in_the_merged_document_is_a_problem(admin: httpx.Client) -> None:
    document = _document(admin)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status[0] in "45" and path != "/api/v1/health":
                    assert list(response["content"]) == [PROBLEM], (method, path, status)
    upload = document["paths"]["/api/v1/datasets"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"400", "409", "413", "415", "422"} <= set(upload["responses"])
    download = document["paths"]["/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}/download"]["get"]
    assert list(download["responses"]["200"]["content"]) == ["application/zip"]


def test_the_docs_page_is_public_and_loads_nothing_from_outside(gateway: httpx.Client) -> None:
    page = gateway.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/api/docs/") for s in sources), sources
    for source in sources:
        asset = gateway.get(source)
        assert asset.status_code == 200, source
        assert asset.headers["content-type"].startswith(("text/css", "text/javascript")), source
        assert b"//cdn." not in asset.content and b"unpkg.com" not in asset.content
    init = gateway.get("/api/docs/init.js").text
    assert "/api/v1/openapi.json" in init and "Authorization" in init
    assert "validatorUrl: null" in init  # Swagger UI would otherwise show a badge from swagger.io
    assert gateway.get("/api/docs/not-an-asset").status_code == 401  # nothing else is public
