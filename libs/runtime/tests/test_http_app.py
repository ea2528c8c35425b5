"""The app factory: problem+json everywhere, auth before routing, public health."""

from __future__ import annotations

import httpx
import pytest
from fakes import ADMIN_TOKEN, GOOD_TOKEN, PROJECT, FakeVerifier
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.health import HealthCheck
from vtp_runtime.http.app import AppParts, build_app
from vtp_runtime.http.problems import ProblemError

PROBLEM = "application/problem+json"


class Widget(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(gt=0)


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/widgets/mine")
    async def mine(caller: Principal = Depends(current_principal)) -> dict[str, str]:
        return {"project": str(caller.project_id)}

    @router.post("/api/v1/widgets")
    async def create(body: Widget) -> Widget:
        return body

    @router.get("/api/v1/widgets/conflict")
    async def conflict() -> None:
        raise ProblemError(409, "widget_taken", "Widget taken", "Someone has it.")

    @router.get("/api/v1/widgets/boom")
    async def boom() -> None:
        raise ValueError("bug")

    return router


async def _down() -> None:
    raise ConnectionError("no route")


async def _ok() -> None:
    return None


def _client(verifier: FakeVerifier, checks: list[HealthCheck] | None = None) -> httpx.AsyncClient:
    parts = AppParts("widgets", "1.0", verifier, routers=[_router()], checks=checks or [HealthCheck("db", _ok)])
    transport = httpx.ASGITransport(app=build_app(parts), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


AUTH = {"Authorization": f"Bearer {GOOD_TOKEN}"}


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_health_is_public_and_tells_an_anonymous_caller_only_the_status():
    async with _client(FakeVerifier()) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_reports_checks_to_an_admin_token():
    async with _client(FakeVerifier()) as client:
        response = await client.get("/health", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["checks"]["db"]["status"] == "ok"


@pytest.mark.parametrize("token", [GOOD_TOKEN, "vtp_wrongwrongwrong1", "junk"])
async def test_health_hides_detail_from_non_admin_and_bad_tokens(token: str):
    async with _client(FakeVerifier(), [HealthCheck("db", _ok), HealthCheck("kafka", _down)]) as client:
        response = await client.get("/health", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json() == {"status": "down"}  # no dependency names, no error text


async def test_health_answers_when_the_token_cannot_be_checked():
    verifier = FakeVerifier()
    verifier.down = True
    async with _client(verifier) as client:
        response = await client.get("/health", headers=ADMIN)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_health_is_503_when_a_dependency_is_down():
    async with _client(FakeVerifier(), [HealthCheck("db", _ok), HealthCheck("kafka", _down)]) as client:
        response = await client.get("/health", headers=ADMIN)
    assert response.status_code == 503
    assert response.json()["checks"]["kafka"] == {"status": "down", "error": "ConnectionError: no route"}


@pytest.mark.parametrize("path", ["/api/v1/widgets/mine", "/api/v1/nothing-here", "/openapi.json"])
async def test_missing_token_is_401_problem_even_for_unknown_paths(path: str):
    async with _client(FakeVerifier()) as client:
        response = await client.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthorized"


async def test_bad_token_is_401_invalid_token():
    async with _client(FakeVerifier()) as client:
        response = await client.get("/api/v1/widgets/mine", headers={"Authorization": "Bearer vtp_wrongwrongwrong1"})
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"


async def test_unreachable_identity_is_503_not_401():
    verifier = FakeVerifier()
    verifier.down = True
    async with _client(verifier) as client:
        response = await client.get("/api/v1/widgets/mine", headers=AUTH)
    assert response.status_code == 503 and response.json()["code"] == "auth_unavailable"


async def test_principal_reaches_the_route():
    async with _client(FakeVerifier()) as client:
        response = await client.get("/api/v1/widgets/mine", headers=AUTH)
    assert response.json() == {"project": str(PROJECT)}


async def test_validation_reports_every_problem_with_pointers():
    async with _client(FakeVerifier()) as client:
        response = await client.post("/api/v1/widgets", json={"name": "", "size": 0}, headers=AUTH)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "validation_failed"
    assert {(e["pointer"], e["code"]) for e in body["errors"]} == {
        ("#/body/name", "string_too_short"),
        ("#/body/size", "greater_than"),
    }


async def test_problem_error_keeps_its_code():
    async with _client(FakeVerifier()) as client:
        response = await client.get("/api/v1/widgets/conflict", headers=AUTH)
    assert response.status_code == 409
    assert response.json() == {
        "type": "https://vtp.dev/problems/widget_taken",
        "title": "Widget taken",
        "status": 409,
        "code": "widget_taken",
        "detail": "Someone has it.",
        "instance": "/api/v1/widgets/conflict",
    }


async def test_unknown_route_with_token_is_404_problem_and_bug_is_500_problem():
    async with _client(FakeVerifier()) as client:
        missing = await client.get("/api/v1/nothing-here", headers=AUTH)
        bug = await client.get("/api/v1/widgets/boom", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert bug.status_code == 500 and bug.json()["code"] == "internal_error"
    assert "bug" not in bug.text  # internals are not leaked
