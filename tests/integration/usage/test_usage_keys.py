"""Usage per API key: a key's predicts (and its 429s) counted under its id, the key_id filter, and who may
read usage: a key needs `usage:read` and sees only the deployments it reaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from .conftest import deploy, jpeg, wait_usage

pytestmark = pytest.mark.integration


def _key(admin: httpx.Client, deployment_id: str, scopes: list[str], limits: dict[str, int]) -> dict[str, Any]:
    body = {"name": "usage test", "scopes": scopes, "limits": limits}
    response = admin.post(f"/api/v1/deployments/{deployment_id}/keys", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _predict(client: httpx.Client, deployment_id: str, headers: dict[str, str]) -> int:
    files = [("file", ("a.jpg", jpeg(), "image/jpeg"))]
    return client.post(f"/api/v1/deployments/{deployment_id}/predict", files=files, headers=headers).status_code


def test_usage_per_key_and_who_may_read_it(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any]
):
    d = deploy(stack, admin_token, onnx_export["id"], "usage-keys")["id"]  # its own: other tests count theirs
    began = datetime.now(UTC)
    window = {"from": (began - timedelta(days=1)).isoformat(), "to": (began + timedelta(days=1)).isoformat()}
    window["granularity"] = "day"
    limited = _key(admin, d, ["predict"], {"per_minute": 2})
    reader = _key(admin, d, ["predict", "usage:read"], {})
    as_limited = {"Authorization": f"Bearer {limited['secret']}"}
    as_reader = {"api-key": reader["secret"]}

    with httpx.Client(base_url=str(admin.base_url), timeout=60) as keyed:  # only the key's credentials
        statuses = [_predict(keyed, d, as_limited) for _ in range(4)]
        assert set(statuses) <= {200, 429} and 429 in statuses, statuses
        assert _predict(keyed, d, as_reader) == 200

    path = f"/api/v1/deployments/{d}/usage"

    def keys(body: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
        return {row["key_id"]: row for row in body["by_key"]}

    body = wait_usage(admin, path, window, lambda b: keys(b).get(limited["id"], {}).get("requests") == 4)
    mine = keys(body)[limited["id"]]
    assert mine["images"] == statuses.count(200) and mine["errors_by_code"] == {"rate_limited": statuses.count(429)}
    wait_usage(admin, path, window, lambda b: keys(b).get(reader["id"], {}).get("requests") == 1)
    only = admin.get(path, params={**window, "key_id": limited["id"]}).json()
    assert only["total"]["requests"] == 4 and [k["key_id"] for k in only["by_key"]] == [limited["id"]]

    with httpx.Client(base_url=str(admin.base_url), timeout=30) as anonymous:
        for route in (path, "/api/v1/usage"):
            refused = anonymous.get(route, params=window, headers=as_limited)  # no usage:read
            assert refused.status_code == 403 and refused.json()["code"] == "key_forbidden", refused.text
        allowed = anonymous.get(path, params=window, headers=as_reader)
        assert allowed.status_code == 200 and allowed.json()["total"]["requests"] >= 5
        summary = anonymous.get("/api/v1/usage", params=window, headers=as_reader)
        assert summary.status_code == 200, summary.text
        assert {row["deployment_id"] for row in summary.json()["by_deployment"]} == {d}  # the key's deployment only
