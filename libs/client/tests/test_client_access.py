"""API keys and usage: which route each call takes and how its parameters are spelled."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from vtp_client import Client

DEPLOYMENT = "55555555-5555-5555-5555-555555555555"
KEY = {
    "id": "66666666-6666-6666-6666-666666666666",
    "name": "ci",
    "prefix": "vtpk_ab",
    "status": "active",
    "scopes": ["predict"],
    "deployments": [DEPLOYMENT],
    "limits": {"per_second": 5},
    "created_at": "2026-01-01T00:00:00Z",
    "secret": "vtpk_secret",
}


def recording(answer: httpx.Response) -> tuple[Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer

    return Client("http://vtp.test", "t", http_transport=httpx.MockTransport(handler)), seen


def test_a_deployments_key_goes_to_its_route_and_a_project_key_lists_its_deployments() -> None:
    vtp, seen = recording(httpx.Response(201, json=KEY))
    created = vtp.keys.create("ci", deployment_id=DEPLOYMENT, limits={"per_second": 5})
    assert created.secret == "vtpk_secret" and created.limits.per_second == 5
    assert seen[0].url.path == f"/api/v1/deployments/{DEPLOYMENT}/keys"
    assert json.loads(seen[0].content) == {"name": "ci", "scopes": ["predict"], "limits": {"per_second": 5}}

    expires = datetime(2027, 1, 1, tzinfo=UTC)
    vtp.keys.create("all", deployments=[DEPLOYMENT], scopes=["predict", "usage:read"], expires_at=expires)
    assert seen[1].url.path == "/api/v1/keys"
    body = json.loads(seen[1].content)
    assert body["deployments"] == [DEPLOYMENT] and body["expires_at"] == "2027-01-01T00:00:00+00:00"

    vtp.keys.revoke(KEY["id"])
    assert (seen[2].method, seen[2].url.path) == ("DELETE", f"/api/v1/keys/{KEY['id']}")


def test_usage_is_asked_with_from_and_to_and_csv_comes_back_as_text() -> None:
    report = {
        "deployment_id": DEPLOYMENT,
        "granularity": "hour",
        "from": "2026-01-01T00:00:00+00:00",
        "to": "2026-01-02T00:00:00+00:00",
        "series": [{"start": "2026-01-01T00:00:00+00:00", "requests": 3, "images": 4}],
        "total": {"requests": 3, "images": 4, "latency_ms": {"p50": 5.0, "p95": 9.0, "p99": None}},
        "by_key": [{"key_id": None, "requests": 3}],
    }
    vtp, seen = recording(httpx.Response(200, json=report))
    usage = vtp.usage.deployment(DEPLOYMENT, start=datetime(2026, 1, 1, tzinfo=UTC), granularity="hour")
    assert (usage.total.images, usage.series[0].requests, usage.start.day) == (4, 3, 1)
    assert dict(seen[0].url.params) == {"from": "2026-01-01T00:00:00+00:00", "granularity": "hour"}

    vtp, seen = recording(httpx.Response(200, text="start,requests\n", headers={"content-type": "text/csv"}))
    assert vtp.usage.csv().startswith("start,requests")
    assert (seen[0].url.path, seen[0].url.params["format"]) == ("/api/v1/usage", "csv")


def test_a_canary_split_is_sent_as_traffic_shares() -> None:
    deployment = {
        "id": DEPLOYMENT,
        "name": "d",
        "export_id": KEY["id"],
        "task_type": "detect",
        "runtime": "onnxruntime",
        "status": "ready",
        "traffic": [{"export_id": KEY["id"], "weight": 80}, {"export_id": DEPLOYMENT, "weight": 20}],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    vtp, seen = recording(httpx.Response(200, json=deployment))
    updated = vtp.deployments.update(DEPLOYMENT, traffic={KEY["id"]: 80, DEPLOYMENT: 20})
    assert json.loads(seen[0].content) == {"traffic": deployment["traffic"]}
    assert (seen[0].method, updated.traffic[1]["weight"]) == ("PATCH", 20)


def test_a_batch_is_a_zip_upload_with_predict_parameters_as_form_fields() -> None:
    batch = {
        "id": KEY["id"],
        "deployment_id": DEPLOYMENT,
        "status": "queued",
        "task": "detect",
        "progress": {"total_images": 3, "processed_images": 0},
    }
    vtp, seen = recording(httpx.Response(202, json=batch))
    created = vtp.batches.create(DEPLOYMENT, b"PK zip", conf=0.5, classes=[0, 2])
    assert (created.status, created.progress["total_images"], created.finished) == ("queued", 3, False)
    request = seen[0]
    assert request.url.path == f"/api/v1/deployments/{DEPLOYMENT}/batches"
    assert b'name="conf"\r\n\r\n0.5' in request.content
    assert request.content.count(b'name="classes"') == 2 and b'filename="upload.zip"' in request.content

    vtp, seen = recording(httpx.Response(200, json={"items": [batch | {"status": "succeeded"}]}))
    assert [b.finished for b in vtp.batches.list(DEPLOYMENT, status="succeeded")] == [True]
    assert dict(seen[0].url.params) == {"status": "succeeded", "limit": "100"}
