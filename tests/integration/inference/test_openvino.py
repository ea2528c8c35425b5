"""The OpenVINO runtime serves the job's OpenVINO export: the same detections as the ONNX deployment of
the same checkpoint (within the parity tolerances), its own OIP platform, and runtime/format mismatches
refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from ..export.conftest import wait_export
from .conftest import unique
from .test_predict import CONF, _iou

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def openvino_export(stack: LocalStack, admin_token: str, trained_job: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        response = api.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": "openvino"})
        assert response.status_code in (200, 202), response.text
        export = wait_export(api, response.json()["id"])
    assert export["status"] == "succeeded", export["error"]
    return export


def test_openvino_deployment_predicts_like_the_onnx_one(
    admin: httpx.Client, onnx_export: dict, openvino_export: dict, photos: dict[str, Path]
):
    body = {"export_id": openvino_export["id"], "name": unique("ov"), "runtime": "openvino"}
    created = admin.post("/api/v1/deployments", json=body)
    assert created.status_code == 201 and created.json()["status"] == "ready", created.text
    assert created.json()["runtime"] == "openvino"
    onnx = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("onnx")}).json()
    files = [("file", (n, p.read_bytes(), "image/jpeg")) for n, p in photos.items()]
    ours = admin.post(f"/api/v1/deployments/{created.json()['id']}/predict", params={"conf": CONF}, files=files)
    theirs = admin.post(f"/api/v1/deployments/{onnx['id']}/predict", params={"conf": CONF}, files=files)
    assert ours.status_code == theirs.status_code == 200, ours.text
    compared = 0
    for a, b in zip(ours.json()["images"], theirs.json()["images"], strict=True):
        confident = [d for d in b["detections"] if d["confidence"] > CONF + 0.001]  # clear of it by parity's 1e-3
        for d in confident:
            same = [o for o in a["detections"] if o["class_id"] == d["class_id"]]
            best = max(same, key=lambda o: _iou(o["xyxy"], d["xyxy"]))
            assert _iou(best["xyxy"], d["xyxy"]) >= 0.99 and abs(best["confidence"] - d["confidence"]) <= 0.01
            compared += 1
    assert compared > 0
    meta = admin.get(f"/v2/models/{body['name']}").json()
    assert meta["platform"] == "openvino" and meta["inputs"][0]["shape"] == [1, 3, 64, 64]


def test_runtime_and_format_must_match(admin: httpx.Client, openvino_export: dict):
    body = {"export_id": openvino_export["id"], "name": unique("m")}  # onnxruntime by default
    refused = admin.post("/api/v1/deployments", json=body)
    assert refused.status_code == 422 and refused.json()["code"] == "export_format_unsupported"
