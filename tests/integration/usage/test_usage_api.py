"""Usage through the gateway: predicts and OIP infers counted per minute, hour and day (requests, images,
errors by code, latency percentiles, compute seconds, bytes in), the project summary, CSV, every bad
parameter at once, and another project seeing nothing of it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from .conftest import jpeg, wait_usage

pytestmark = pytest.mark.integration
PREDICTS, IMAGES_EACH, BAD = 4, 2, 2


@pytest.fixture(scope="module")
def traffic(stack: LocalStack, admin_token: str, usage_deployment: dict[str, Any]) -> dict[str, Any]:
    """What the client sent and saw: successful predicts, refused ones, one OIP infer."""
    began = datetime.now(UTC)
    d = usage_deployment
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=60) as admin:
        return _send(admin, d, began)


def _send(admin: httpx.Client, d: dict[str, Any], began: datetime) -> dict[str, Any]:
    ok = 0
    for _ in range(PREDICTS):
        files = [("file", (f"{i}.jpg", jpeg(), "image/jpeg")) for i in range(IMAGES_EACH)]
        response = admin.post(f"/api/v1/deployments/{d['id']}/predict", files=files)
        assert response.status_code == 200, response.text
        ok += 1
    for _ in range(BAD):
        raw = {"content": b"not an image", "headers": {"Content-Type": "image/jpeg"}}
        bad = admin.post(f"/api/v1/deployments/{d['id']}/predict", **raw)
        assert bad.status_code == 422 and bad.json()["code"] == "image_undecodable", bad.text
    size = d["imgsz"]
    tensor = {"name": "images", "shape": [1, 3, size, size], "datatype": "FP32", "data": [0.5] * (3 * size * size)}
    infer = admin.post(f"/v2/models/{d['name']}/infer", json={"inputs": [tensor]})
    assert infer.status_code == 200, infer.text
    return {"began": began, "requests": ok + BAD + 1, "images": ok * IMAGES_EACH + 1}


def _window(began: datetime, granularity: str) -> dict[str, str]:
    span = {"minute": timedelta(hours=1), "hour": timedelta(days=1), "day": timedelta(days=3)}[granularity]
    return {"from": (began - span / 2).isoformat(), "to": (began + span / 2).isoformat(), "granularity": granularity}


@pytest.mark.parametrize("granularity", ["minute", "hour", "day"])
def test_every_request_is_counted_at_every_granularity(
    admin: httpx.Client, usage_deployment: dict[str, Any], traffic: dict[str, Any], granularity: str
):
    path = f"/api/v1/deployments/{usage_deployment['id']}/usage"
    wanted = traffic["requests"]
    body = wait_usage(admin, path, _window(traffic["began"], granularity), lambda b: b["total"]["requests"] >= wanted)
    total = body["total"]
    assert total["requests"] == traffic["requests"] and total["images"] == traffic["images"]
    assert total["errors"] == BAD and total["errors_by_code"] == {"image_undecodable": BAD}
    assert total["compute_seconds"] > 0 and total["bytes_in"] > 0
    latency = total["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert sum(p["requests"] for p in body["series"]) == traffic["requests"]
    assert body["granularity"] == granularity and body["deployment_id"] == usage_deployment["id"]
    assert [k["key_id"] for k in body["by_key"]] == [None]  # a project token, not an API key


def test_the_project_summary_and_csv(admin: httpx.Client, usage_deployment: dict[str, Any], traffic: dict[str, Any]):
    window = _window(traffic["began"], "day")
    wanted = traffic["requests"]

    def ours(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [row for row in body["by_deployment"] if row["deployment_id"] == usage_deployment["id"]]

    summary = wait_usage(admin, "/api/v1/usage", window, lambda b: bool(ours(b)) and ours(b)[0]["requests"] >= wanted)
    assert ours(summary)[0]["images"] == traffic["images"]
    assert summary["total"]["requests"] >= wanted  # other tests' deployments are in the project too

    path = f"/api/v1/deployments/{usage_deployment['id']}/usage"
    for response in (
        admin.get(path, params={**window, "format": "csv"}),
        admin.get(path, params=window, headers={"Accept": "text/csv"}),
    ):
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert rows and set(rows[0]) >= {"start", "requests", "images", "errors", "errors_by_code", "latency_p99_ms"}
        assert sum(int(r["requests"]) for r in rows) == wanted
        assert sum(int(r["images"]) for r in rows) == traffic["images"]
        assert f"image_undecodable={BAD}" in {r["errors_by_code"] for r in rows}


def test_every_bad_parameter_is_reported_at_once(admin: httpx.Client, usage_deployment: dict[str, Any]):
    path = f"/api/v1/deployments/{usage_deployment['id']}/usage"
    params = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z", "granularity": "week"}
    params |= {"key_id": "x", "format": "xml"}
    for route in (path, "/api/v1/usage"):
        response = admin.get(route, params=params)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        found = {(e["pointer"], e["code"]) for e in response.json()["errors"]}
        assert found == {
            ("#/granularity", "invalid_parameter"),
            ("#/key_id", "invalid_parameter"),
            ("#/from", "invalid_range"),
            ("#/format", "invalid_parameter"),
        }, found
    too_long = admin.get(path, params={"from": "2026-01-01", "to": "2026-03-01", "granularity": "minute"})
    assert too_long.status_code == 422 and too_long.json()["code"] == "range_too_long"
    assert admin.get(path, params={"from": "soon"}).json()["errors"][0]["pointer"] == "#/from"


def test_another_project_sees_nothing(
    admin: httpx.Client, usage_deployment: dict[str, Any], traffic: dict[str, Any], other_project: dict[str, str]
):
    window = _window(traffic["began"], "day")
    with httpx.Client(base_url=str(admin.base_url), headers=other_project, timeout=30) as other:
        response = other.get(f"/api/v1/deployments/{usage_deployment['id']}/usage", params=window)
        assert response.status_code == 404 and response.json()["code"] == "deployment_not_found"
        summary = other.get("/api/v1/usage", params=window)
        assert summary.status_code == 200, summary.text
        assert usage_deployment["id"] not in {row["deployment_id"] for row in summary.json()["by_deployment"]}
    assert summary.json()["total"]["requests"] == 0
