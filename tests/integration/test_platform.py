"""The local stack through the gateway: health, authentication, projects and tokens."""

from __future__ import annotations

import uuid

import httpx
import pytest

from vtp_localstack.services import SERVICES
from vtp_localstack.stack import LocalStack
from vtp_localstack.triton import available as triton_available

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


def test_health_lists_every_service_and_dependency_as_ok(admin: httpx.Client, stack: LocalStack):
    response = admin.get("/api/v1/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["services"]) == set(SERVICES)
    assert all(s["status"] == "ok" for s in body["services"].values())
    triton = {"triton"} if triton_available(stack.cfg) else set()  # the inference service's runtime, when fetched
    assert set(body["dependencies"]) == {"postgres", "kafka", "redis", "storage"} | triton
    assert all(d["status"] == "ok" for d in body["dependencies"].values())


def test_health_needs_no_token(gateway: httpx.Client):
    assert gateway.get("/api/v1/health").status_code == 200


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/projects"),
        ("POST", "/api/v1/projects"),
        ("GET", "/api/v1/auth/whoami"),
        ("GET", "/api/v1/jobs"),
        ("POST", "/api/v1/jobs"),
        ("GET", "/api/v1/trainers"),
        ("GET", "/api/v1/datasets"),
        ("GET", "/api/v1/exports"),
        ("GET", "/api/v1/deployments"),
        ("GET", "/api/v1/subscriptions"),
        ("GET", "/api/v1/no-such-area"),
        ("DELETE", "/api/v1/tokens/x"),
    ],
)
def test_every_non_health_route_needs_a_token(gateway: httpx.Client, method: str, path: str):
    response = gateway.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "unauthorized"


def test_unknown_token_is_rejected(gateway: httpx.Client):
    response = gateway.get("/api/v1/jobs", headers={"Authorization": "Bearer vtp_" + "x" * 43})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_whoami_names_the_default_project(admin: httpx.Client):
    body = admin.get("/api/v1/auth/whoami").json()
    assert body["is_admin"] is True
    projects = admin.get("/api/v1/projects").json()
    assert body["project_id"] in {p["id"] for p in projects}
    assert any(p["slug"] == "default" for p in projects)


def test_admin_token_file_is_private(stack):
    assert (stack.cfg.run_path / "admin-token").stat().st_mode & 0o777 == 0o600


def _new_project(admin: httpx.Client) -> tuple[str, str]:
    project = admin.post("/api/v1/projects", json={"name": f"Team {uuid.uuid4().hex[:6]}"})
    assert project.status_code == 201, project.text
    token = admin.post(f"/api/v1/projects/{project.json()['id']}/tokens", json={"name": "ci"})
    assert token.status_code == 201, token.text
    return project.json()["id"], token.json()["token"]


def test_project_token_sees_only_its_project(admin: httpx.Client, gateway: httpx.Client):
    project_a, token_a = _new_project(admin)
    project_b, _ = _new_project(admin)
    as_a = {"Authorization": f"Bearer {token_a}"}
    assert [p["id"] for p in gateway.get("/api/v1/projects", headers=as_a).json()] == [project_a]
    other = gateway.get(f"/api/v1/projects/{project_b}", headers=as_a)
    assert other.status_code == 404 and other.json()["code"] == "project_not_found"
    tokens = gateway.get(f"/api/v1/projects/{project_b}/tokens", headers=as_a)
    assert tokens.status_code == 404
    forbidden = gateway.post("/api/v1/projects", json={"name": "nope"}, headers=as_a)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "admin_required"


def test_tokens_are_shown_once_and_stored_hashed(admin: httpx.Client):
    project_id, secret = _new_project(admin)
    listed = admin.get(f"/api/v1/projects/{project_id}/tokens").json()
    assert len(listed) == 1 and "token" not in listed[0] and "token_hash" not in listed[0]
    assert secret.startswith(listed[0]["prefix"]) and secret != listed[0]["prefix"]


def test_revoked_token_stops_working(admin: httpx.Client, gateway: httpx.Client):
    _project_id, secret = _new_project(admin)
    me = gateway.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert admin.delete(f"/api/v1/tokens/{me.json()['token_id']}").status_code == 200
    # identity's own cache is short (5 s in the stack); whoami is answered by identity itself
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if gateway.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {secret}"}).status_code == 401:
            return
        time.sleep(0.5)
    pytest.fail("revoked token still accepted after 10 s")


def test_project_validation_reports_every_problem_and_stores_nothing(admin: httpx.Client):
    before = admin.get("/api/v1/projects").json()
    response = admin.post("/api/v1/projects", json={"name": "", "slug": "Bad Slug!", "extra": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "validation_failed"
    assert {e["pointer"] for e in body["errors"]} == {"#/body/name", "#/body/slug", "#/body/extra"}
    assert admin.get("/api/v1/projects").json() == before


def test_duplicate_slug_is_a_conflict(admin: httpx.Client):
    slug = f"dup-{uuid.uuid4().hex[:8]}"
    assert admin.post("/api/v1/projects", json={"name": "one", "slug": slug}).status_code == 201
    second = admin.post("/api/v1/projects", json={"name": "two", "slug": slug})
    assert second.status_code == 409 and second.json()["code"] == "project_slug_taken"


def test_unknown_api_path_with_token_is_404_problem(admin: httpx.Client):
    response = admin.get("/api/v1/no-such-area")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
