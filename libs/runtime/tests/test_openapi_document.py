"""Every service's OpenAPI document says what the API answers: problem+json, bearer auth, bodies."""

from __future__ import annotations

from typing import Any

import httpx
from fakes import GOOD_TOKEN, FakeVerifier
from fastapi import APIRouter, Body, Request, Response
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from vtp_runtime.http.app import AppParts, build_app
from vtp_runtime.http.openapi import binary_response, json_body, multipart_body, problems

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Gadget(BaseModel):
    name: str = Field(min_length=1)


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/api/v1/gadgets", status_code=201, responses=problems(409), openapi_extra=json_body(Gadget))
    async def create(body: dict[str, Any] = Body()) -> dict[str, Any]:
        return body

    @router.get("/api/v1/gadgets/{gadget_id}", responses=problems(404))
    async def get(gadget_id: int) -> dict[str, int]:
        return {"id": gadget_id}

    form = {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}

    @router.post("/api/v1/uploads", responses=problems(413, 415), openapi_extra=multipart_body(form))
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.get("/api/v1/zip", response_class=Response, responses=binary_response("application/zip", "A zip"))
    async def download() -> Response:
        return Response(b"PK", media_type="application/zip")

    return router


async def _document() -> dict[str, Any]:
    app = build_app(AppParts("gadgets", "1.0", FakeVerifier(), routers=[_router()]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/openapi.json")).status_code == 401  # the document needs a token too
        response = await client.get("/openapi.json", headers={"Authorization": f"Bearer {GOOD_TOKEN}"})
        assert (await client.get("/docs")).status_code == 401  # no CDN-backed docs page per service
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_the_document_is_valid_openapi_and_every_error_is_a_problem() -> None:
    document = await _document()
    validate(document)  # type: ignore[arg-type]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/health":
                    assert response["content"] == PROBLEM, (method, path, status)


async def test_routes_document_auth_and_their_own_statuses_and_health_is_public() -> None:
    document = await _document()
    paths = document["paths"]
    assert set(paths["/api/v1/gadgets/{gadget_id}"]["get"]["responses"]) == {"200", "401", "404", "422", "503"}
    # 400: FastAPI's answer to a body it cannot decode.
    assert set(paths["/api/v1/gadgets"]["post"]["responses"]) == {"201", "400", "401", "409", "422", "503"}
    assert paths["/health"]["get"]["security"] == []
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}
    assert document["security"] == [{"bearer": []}]  # every other route
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_hand_parsed_bodies_and_streams_are_documented_as_they_are() -> None:
    document = await _document()
    paths = document["paths"]
    body = paths["/api/v1/gadgets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Gadget"}
    assert document["components"]["schemas"]["Gadget"]["required"] == ["name"]
    assert not any(key.startswith("x-vtp") for key in paths["/api/v1/gadgets"]["post"])
    assert "multipart/form-data" in paths["/api/v1/uploads"]["post"]["requestBody"]["content"]
    assert list(paths["/api/v1/zip"]["get"]["responses"]["200"]["content"]) == ["application/zip"]
