"""Merging the services' OpenAPI documents into the platform's."""

from __future__ import annotations

from typing import Any

from vtp_gateway.openapi_merge import merge

PROBLEM = {"title": "Problem", "type": "object"}


def _doc(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1.0"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }


def _op(ref: str) -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}
    return {"post": {"requestBody": body, "responses": {"200": {"description": "ok"}}}}


def test_only_routed_paths_and_clashing_schemas_get_the_service_prefix() -> None:
    own = _doc({"/api/v1/health": {"get": {"responses": {}}}, "/health": {"get": {"responses": {}}}}, {})
    jobs = _doc(
        {"/api/v1/jobs": _op("SplitIn"), "/health": {"get": {"responses": {}}}},
        {"SplitIn": {"title": "SplitIn", "type": "object", "properties": {"seed": {}}}, "Problem": PROBLEM},
    )
    datasets = _doc(
        {"/api/v1/datasets/{id}/split": _op("SplitIn"), "/api/v1/jobsearch": _op("Problem")},
        {"SplitIn": {"title": "SplitIn", "type": "object", "properties": {"method": {}}}, "Problem": PROBLEM},
    )
    merged = merge(own, {"jobs": jobs, "datasets": datasets})
    assert set(merged["paths"]) == {"/api/v1/health", "/api/v1/jobs", "/api/v1/datasets/{id}/split"}
    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"SplitIn", "DatasetsSplitIn", "Problem"}  # identical Problem shared
    assert schemas["DatasetsSplitIn"]["title"] == "DatasetsSplitIn"  # generators name models by title
    split_body = merged["paths"]["/api/v1/datasets/{id}/split"]["post"]["requestBody"]
    assert split_body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DatasetsSplitIn"}
    jobs_body = merged["paths"]["/api/v1/jobs"]["post"]["requestBody"]
    assert jobs_body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SplitIn"}
    assert datasets["components"]["schemas"]["SplitIn"]["title"] == "SplitIn", "the input is not changed"
