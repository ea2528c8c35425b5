"""API keys through the gateway: create (secret once), list, get, rotate with an overlap, revoke;
keys serve predict and OIP REST (Bearer or `api-key`) and never management routes; another
project sees nothing; every validation problem at once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .conftest import bearer, create_key, infer_body, predict

pytestmark = pytest.mark.integration


def test_a_key_serves_predict_and_oip_and_is_listed_rotated_and_revoked(
    admin: httpx.Client, gateway: httpx.Client, deployment: dict
):
    dep = deployment["id"]
    key = create_key(admin, f"/api/v1/deployments/{dep}/keys", limits={"per_minute": 1000})
    secret = key["secret"]
    assert secret.startswith("vtpk_") and key["prefix"] == secret[:12] and key["status"] == "active"
    assert key["deployments"] == [dep] and key["scopes"] == ["predict"] and key["limits"]["per_minute"] == 1000

    answer = predict(admin, dep, bearer(secret))
    assert answer.status_code == 200, answer.text
    assert '"key-per-minute";q=1000;w=60' in answer.headers["RateLimit-Policy"]
    assert '"key-per-minute";r=' in answer.headers["RateLimit"]
    name = deployment["name"]
    infer = gateway.post(f"/v2/models/{name}/infer", json=infer_body(deployment["imgsz"]), headers={"api-key": secret})
    assert infer.status_code == 200, infer.text
    assert infer.json()["outputs"][0]["name"] and "RateLimit" in infer.headers
    assert gateway.get(f"/v2/models/{name}", headers={"api-key": secret}).status_code == 200

    # Listed (no secret), under the deployment and project-wide; last use written within seconds.
    for path in (f"/api/v1/deployments/{dep}/keys", "/api/v1/keys"):
        listed = admin.get(path).json()["items"]
        mine = [k for k in listed if k["id"] == key["id"]]
        assert len(mine) == 1 and "secret" not in mine[0] and mine[0]["prefix"] == key["prefix"]
    deadline = time.monotonic() + 60
    while admin.get(f"/api/v1/keys/{key['id']}").json()["last_used_at"] is None:
        assert time.monotonic() < deadline, "last_used_at never written"
        time.sleep(1)

    # Rotation: both work during the overlap; the successor keeps scopes and limits.
    rotated = admin.post(f"/api/v1/deployments/{dep}/keys/{key['id']}/rotate", json={"overlap_seconds": 3600})
    assert rotated.status_code == 201, rotated.text
    successor = rotated.json()
    assert successor["secret"] != secret and successor["limits"] == key["limits"]
    assert predict(admin, dep, bearer(secret)).status_code == 200
    assert predict(admin, dep, bearer(successor["secret"])).status_code == 200
    old = admin.get(f"/api/v1/keys/{key['id']}").json()
    assert old["rotated_to"] == successor["id"] and old["expires_at"] is not None
    again = admin.post(f"/api/v1/keys/{key['id']}/rotate", json={})
    assert again.status_code == 409 and again.json()["code"] == "key_not_active"

    # A rotation without overlap ends the old key at once.
    final = admin.post(f"/api/v1/keys/{successor['id']}/rotate", json={"overlap_seconds": 0}).json()
    refused = predict(admin, dep, bearer(successor["secret"]))
    assert refused.status_code == 401 and refused.json()["code"] in ("invalid_key", "invalid_token")

    # Revocation.
    assert admin.delete(f"/api/v1/deployments/{dep}/keys/{final['id']}").status_code == 204
    assert admin.delete(f"/api/v1/keys/{final['id']}").status_code == 204  # again: a no-op
    assert predict(admin, dep, bearer(final["secret"])).status_code == 401
    assert admin.get(f"/api/v1/keys/{final['id']}").json()["status"] == "revoked"


def test_a_key_never_reaches_management_routes(admin: httpx.Client, gateway: httpx.Client, deployment: dict):
    key = create_key(admin, "/api/v1/keys")  # project-wide
    secret = key["secret"]
    assert key["deployments"] is None
    assert predict(gateway, deployment["id"], {"api-key": secret}).status_code == 200
    for method, path in [
        ("GET", "/api/v1/deployments"),
        ("GET", f"/api/v1/deployments/{deployment['id']}"),
        ("DELETE", f"/api/v1/deployments/{deployment['id']}"),
        ("GET", "/api/v1/keys"),
        ("POST", "/api/v1/keys"),
        ("PUT", f"/api/v1/deployments/{deployment['id']}/limits"),
    ]:
        for headers in (bearer(secret), {"api-key": secret}):
            refused = gateway.request(method, path, headers=headers, json={})
            assert refused.status_code == 403, (method, path, refused.text)
            assert refused.json()["code"] == "credential_not_allowed"
    # Another service knows no keys at all.
    other = gateway.get("/api/v1/jobs", headers=bearer(secret))
    assert other.status_code == 401 and other.json()["code"] == "invalid_token"
    assert admin.get(f"/api/v1/deployments/{deployment['id']}").status_code == 200  # the token still works


def test_a_deployment_key_reaches_only_its_deployment(admin: httpx.Client, deployment: dict):
    key = create_key(admin, "/api/v1/keys", deployments=[deployment["id"]])
    elsewhere = predict(admin, str(uuid.uuid4()), bearer(key["secret"]))
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "key_forbidden"


def test_validation_lists_every_problem(admin: httpx.Client, deployment: dict):
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    missing = str(uuid.uuid4())
    body: dict[str, Any] = {
        "name": "",
        "scopes": ["usage:read", "admin"],
        "expires_at": past,
        "deployments": [deployment["id"], missing],
        "limits": {"per_second": 0, "burst": 3},
        "colour": "red",
    }
    response = admin.post("/api/v1/keys", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    found = {(e["pointer"], e["code"]) for e in problem["errors"]}
    assert {
        ("#/body/colour", "extra_forbidden"),
        ("#/body/name", "string_too_short"),
        ("#/body/limits/per_second", "greater_than_equal"),
        ("#/body/limits/burst", "extra_forbidden"),
        ("#/body/scopes", "invalid_scopes"),
        ("#/body/expires_at", "expiry_in_past"),
        ("#/body/deployments/1", "deployment_not_found"),
    } <= found, found
    assert sum(1 for e in problem["errors"] if e["code"] == "invalid_scopes") == 2  # no predict; unknown admin
    unknown = admin.post(f"/api/v1/deployments/{missing}/keys", json={"name": "k"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "deployment_not_found"
    naive = admin.post("/api/v1/keys", json={"name": "k", "expires_at": "2999-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["pointer"] == "#/body/expires_at"
    assert admin.get("/api/v1/keys", params={"limit": 0}).status_code == 422


def test_another_project_sees_nothing(admin: httpx.Client, deployment: dict, other_project: dict[str, str]):
    key = create_key(admin, f"/api/v1/deployments/{deployment['id']}/keys")
    with httpx.Client(base_url=str(admin.base_url), headers=other_project, timeout=30) as other:
        assert other.get(f"/api/v1/keys/{key['id']}").status_code == 404
        assert other.delete(f"/api/v1/keys/{key['id']}").json()["code"] == "key_not_found"
        assert other.post(f"/api/v1/keys/{key['id']}/rotate", json={}).status_code == 404
        assert key["id"] not in {k["id"] for k in other.get("/api/v1/keys").json()["items"]}
        assert other.get(f"/api/v1/deployments/{deployment['id']}/keys").status_code == 404
        assert other.post(f"/api/v1/deployments/{deployment['id']}/keys", json={"name": "x"}).status_code == 404
        # Its own project-wide key cannot use this project's deployment either.
        theirs = create_key(other, "/api/v1/keys")
        refused = predict(other, deployment["id"], bearer(theirs["secret"]))
        assert refused.status_code == 404 and refused.json()["code"] == "deployment_not_found"
    assert admin.get(f"/api/v1/keys/{theirs['id']}").status_code == 404
