"""Who may do what with tokens, and what health tells whom, through the gateway and each service."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from vtp_localstack.services import SERVICES
from vtp_localstack.stack import LocalStack

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _issue(admin: httpx.Client, project_id: str, name: str, is_admin: bool = False) -> dict:
    response = admin.post(f"/api/v1/projects/{project_id}/tokens", json={"name": name, "is_admin": is_admin})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture()
def team(admin: httpx.Client) -> dict:
    """A project with two ordinary tokens and a second admin token (never the session's own admin)."""
    project = admin.post("/api/v1/projects", json={"name": f"Tokens {uuid.uuid4().hex[:6]}"})
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    return {
        "project_id": pid,
        "a": _issue(admin, pid, "ci-a"),
        "b": _issue(admin, pid, "ci-b"),
        "admin": _issue(admin, pid, "ops", is_admin=True),
    }


def _until(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def test_a_non_admin_token_lists_only_itself(gateway: httpx.Client, admin: httpx.Client, team: dict):
    pid, a = team["project_id"], team["a"]
    mine = gateway.get(f"/api/v1/projects/{pid}/tokens", headers=_bearer(a["token"]))
    assert mine.status_code == 200, mine.text
    assert [t["id"] for t in mine.json()] == [a["id"]]
    everyone = admin.get(f"/api/v1/projects/{pid}/tokens").json()
    assert {t["id"] for t in everyone} == {a["id"], team["b"]["id"], team["admin"]["id"]}


def test_a_non_admin_token_cannot_revoke_another_token(gateway: httpx.Client, team: dict):
    as_a = _bearer(team["a"]["token"])
    for other in (team["b"], team["admin"]):
        response = gateway.delete(f"/api/v1/tokens/{other['id']}", headers=as_a)
        assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "token_not_found"  # others' tokens look missing
        still = gateway.get("/api/v1/auth/whoami", headers=_bearer(other["token"]))
        assert still.status_code == 200 and still.json()["token_id"] == other["id"]


def test_a_non_admin_token_cannot_issue_tokens(gateway: httpx.Client, admin: httpx.Client, team: dict):
    pid = team["project_id"]
    before = admin.get(f"/api/v1/projects/{pid}/tokens").json()
    as_a = _bearer(team["a"]["token"])
    for is_admin in (False, True):
        body = {"name": "sneaky", "is_admin": is_admin}
        response = gateway.post(f"/api/v1/projects/{pid}/tokens", json=body, headers=as_a)
        assert response.status_code == 403 and response.json()["code"] == "admin_required"
    assert admin.get(f"/api/v1/projects/{pid}/tokens").json() == before


def test_a_non_admin_token_can_revoke_itself(gateway: httpx.Client, team: dict):
    a = team["a"]
    response = gateway.delete(f"/api/v1/tokens/{a['id']}", headers=_bearer(a["token"]))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == a["id"] and response.json()["revoked_at"] is not None
    assert _until(lambda: gateway.get("/api/v1/auth/whoami", headers=_bearer(a["token"])).status_code == 401)
    assert gateway.get("/api/v1/auth/whoami", headers=_bearer(team["b"]["token"])).status_code == 200


def test_an_admin_token_revokes_any_token(gateway: httpx.Client, admin: httpx.Client, team: dict):
    b = team["b"]
    assert admin.delete(f"/api/v1/tokens/{b['id']}").status_code == 200
    assert _until(lambda: gateway.get("/api/v1/auth/whoami", headers=_bearer(b["token"])).status_code == 401)


def test_anonymous_platform_health_tells_only_the_status(gateway: httpx.Client):
    response = gateway.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_non_admin_token_gets_no_health_detail(gateway: httpx.Client, team: dict):
    response = gateway.get("/api/v1/health", headers=_bearer(team["a"]["token"]))
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_an_admin_token_gets_every_service_and_dependency(admin: httpx.Client):
    body = admin.get("/api/v1/health").json()
    assert set(body["services"]) == set(SERVICES)
    assert all(report["checks"] for report in body["services"].values())
    assert {"postgres", "kafka"} <= set(body["dependencies"])


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_health_tells_anonymous_callers_only_the_status(stack: LocalStack, admin_token: str, service: str):
    url = f"{stack.cfg.service_url(service)}/health"
    anonymous = httpx.get(url, timeout=10)
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    detailed = httpx.get(url, headers=_bearer(admin_token), timeout=10).json()
    assert detailed["service"] == service and detailed["status"] == "ok" and detailed["checks"]


def test_stack_status_reads_the_detail_with_the_admin_token(stack: LocalStack):
    health = stack.platform_health()  # what `make status` prints
    assert health is not None and set(health["services"]) == set(SERVICES)
