"""Deployments through the gateway on the real stack: create from an ONNX export, refusals, lifecycle
(patch, deactivate, activate, delete) with its deployment.changed.v1 events, and project scoping."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from PIL import Image

from vtp_localstack.stack import LocalStack

from ..export.conftest import wait_for
from .conftest import unique

pytestmark = pytest.mark.integration


def _events(stack: LocalStack, deployment_id: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            "deployment.changed.v1",
            bootstrap_servers=stack.cfg.kafka_bootstrap,
            group_id=f"t-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=3000, max_records=100000)
        finally:
            await consumer.stop()
        records = [json.loads(r.value) for rs in batches.values() for r in rs]
        return [r for r in records if r["deployment_id"] == deployment_id]

    return asyncio.run(read())


def _timed_predict(api: httpx.Client, deployment_id: str) -> float:
    """Seconds one predict of a small image takes, seen by the client (a replica's first loads the model)."""
    image = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(image, "PNG")
    started = time.perf_counter()
    response = api.post(
        f"/api/v1/deployments/{deployment_id}/predict", content=image.getvalue(), headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 200, response.text
    return time.perf_counter() - started


def test_deploy_an_onnx_export_and_walk_its_lifecycle(admin: httpx.Client, stack: LocalStack, onnx_export: dict):
    name = unique("detector")
    response = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": name, "conf": 0.3})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "ready", created["error"]
    assert created["runtime"] == "onnxruntime" and created["task_type"] == "detect"
    assert created["export_version"] == onnx_export["version"] and created["imgsz"] == 64
    assert created["classes"] == onnx_export["metadata"]["names"]
    assert len(created["model"]["sha256"]) == 64 and created["defaults"] == {"conf": 0.3, "iou": 0.7, "max_det": 300}
    did = created["id"]
    spent = datetime.fromisoformat(created["updated_at"]) - datetime.fromisoformat(created["created_at"])
    cold, warm = (_timed_predict(admin, did) for _ in range(2))
    print(f"create->ready {spent.total_seconds():.3f} s; first request {cold:.3f} s, next {warm:.3f} s")

    assert admin.get(f"/api/v1/deployments/{did}").json()["name"] == name
    listed = admin.get("/api/v1/deployments", params={"status": "ready"}).json()
    assert did in [d["id"] for d in listed["items"]]

    patched = admin.patch(f"/api/v1/deployments/{did}", json={"conf": 0.5, "max_det": 10})
    assert patched.status_code == 200 and patched.json()["defaults"]["conf"] == 0.5
    bad = admin.patch(f"/api/v1/deployments/{did}", json={"conf": 2, "export_id": "nope", "runtime": "triton"})
    assert bad.status_code == 422 and len(bad.json()["errors"]) == 3  # all problems at once, nothing changed
    assert admin.get(f"/api/v1/deployments/{did}").json()["defaults"]["conf"] == 0.5

    assert admin.post(f"/api/v1/deployments/{did}/deactivate").json()["status"] == "stopped"
    again = admin.post(f"/api/v1/deployments/{did}/deactivate")
    assert again.status_code == 200 and again.json()["status"] == "stopped"
    assert admin.post(f"/api/v1/deployments/{did}/activate").json()["status"] == "ready"

    assert admin.delete(f"/api/v1/deployments/{did}").status_code == 204
    gone = admin.get(f"/api/v1/deployments/{did}")
    assert gone.status_code == 404 and gone.json()["code"] == "deployment_not_found"
    assert admin.delete(f"/api/v1/deployments/{did}").status_code == 404

    events = wait_for(lambda: {"items": _events(stack, did)}, lambda e: len(e["items"]) >= 6, 60)["items"]
    assert [e["status"] for e in events] == ["creating", "ready", "updated", "stopped", "ready", "deleted"]
    ready = events[1]
    assert ready["name"] == name and ready["export_id"] == onnx_export["id"] and ready["runtime"] == "onnxruntime"
    assert ready["model_sha256"] == created["model"]["sha256"] and ready["export_version"] == onnx_export["version"]


def test_refusals_name_every_problem(admin: httpx.Client, onnx_export: dict, other_project: dict[str, str]):
    missing = admin.post("/api/v1/deployments", json={"export_id": str(uuid.uuid4()), "name": unique("m")})
    assert missing.status_code == 422 and missing.json()["code"] == "export_not_found"
    assert missing.json()["errors"][0]["pointer"] == "#/body/export_id"

    # Another project's export answers exactly like a missing one.
    with httpx.Client(base_url=str(admin.base_url), headers=other_project, timeout=30) as other:
        foreign = other.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("f")})
    assert foreign.status_code == 422 and foreign.json()["code"] == "export_not_found"

    # A runtime this platform does not offer (triton where no Triton server is configured: test_triton.py).
    body = {"export_id": onnx_export["id"], "name": unique("r"), "runtime": "tensorrt"}
    refused = admin.post("/api/v1/deployments", json=body)
    assert refused.status_code == 422 and refused.json()["code"] == "runtime_unavailable", refused.text
    body = {"export_id": onnx_export["id"], "name": unique("r"), "runtime": "openvino"}
    mismatch = admin.post("/api/v1/deployments", json=body)
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "export_format_unsupported", mismatch.text

    both = admin.post(
        "/api/v1/deployments", json={"export_id": str(uuid.uuid4()), "name": unique("b"), "runtime": "tensorrt"}
    )
    assert both.status_code == 422 and both.json()["code"] == "validation_failed"
    assert {e["code"] for e in both.json()["errors"]} == {"export_not_found", "runtime_unavailable"}

    shape = admin.post(
        "/api/v1/deployments",
        json={"export_id": "nope", "name": "has space", "conf": 0, "max_det": 0, "extra": 1},
    )
    assert shape.status_code == 422 and shape.json()["code"] == "validation_failed"
    pointers = {e["pointer"] for e in shape.json()["errors"]}
    assert {"#/body/export_id", "#/body/name", "#/body/conf", "#/body/max_det", "#/body/extra"} <= pointers

    before = admin.get("/api/v1/deployments").json()["total"]
    name = unique("dup")
    assert admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": name}).status_code == 201
    dup = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": name})
    assert dup.status_code == 409 and dup.json()["code"] == "deployment_name_taken"
    assert admin.get("/api/v1/deployments").json()["total"] == before + 1  # refusals left nothing behind


def test_another_projects_deployment_is_missing(admin: httpx.Client, onnx_export: dict, other_project: dict):
    did = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("p")}).json()["id"]
    with httpx.Client(base_url=str(admin.base_url), headers=other_project, timeout=30) as other:
        for method, path in [
            ("GET", f"/api/v1/deployments/{did}"),
            ("PATCH", f"/api/v1/deployments/{did}"),
            ("POST", f"/api/v1/deployments/{did}/deactivate"),
            ("DELETE", f"/api/v1/deployments/{did}"),
        ]:
            response = other.request(method, path, json={} if method == "PATCH" else None)
            assert response.status_code == 404 and response.json()["code"] == "deployment_not_found", (method, path)
        assert did not in [d["id"] for d in other.get("/api/v1/deployments").json()["items"]]
    assert admin.get(f"/api/v1/deployments/{did}").json()["status"] == "ready"
