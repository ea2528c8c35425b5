"""Segment, pose and classify on the OpenVINO runtime: each task's OpenVINO export, deployed with
`runtime: "openvino"`, answers the package's photos as the ONNX Runtime deployment of the same job does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from .alike import assert_alike
from .conftest import TASKS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def openvino_deployments(
    stack: LocalStack, admin_token: str, task_openvino_exports: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    found = {}
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as admin:
        for task in TASKS:
            export = task_openvino_exports[task]
            assert export["status"] == "succeeded", (task, export["error"])
            body = {"export_id": export["id"], "name": f"{task}-ov-{export['id'][:8]}", "runtime": "openvino"}
            response = admin.post("/api/v1/deployments", json=body)
            assert response.status_code == 201 and response.json()["status"] == "ready", response.text
            assert response.json()["task_type"] == task and response.json()["runtime"] == "openvino"
            found[task] = response.json()
    return found


def test_segment_on_openvino_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, openvino_deployments: dict, photos: dict[str, Path]
):
    assert assert_alike(admin, "segment", deployments["segment"], openvino_deployments["segment"], photos) > 0


def test_pose_on_openvino_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, openvino_deployments: dict, photos: dict[str, Path]
):
    assert assert_alike(admin, "pose", deployments["pose"], openvino_deployments["pose"], photos) > 0


def test_classify_on_openvino_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, openvino_deployments: dict, photos: dict[str, Path]
):
    assert assert_alike(admin, "classify", deployments["classify"], openvino_deployments["classify"], photos) > 0


def test_oip_metadata_of_an_openvino_segment_model_lists_both_outputs(admin: httpx.Client, openvino_deployments: dict):
    meta = admin.get(f"/v2/models/{openvino_deployments['segment']['name']}").json()
    assert meta["platform"] == "openvino" and [o["name"] for o in meta["outputs"]] == ["output0", "output1"]
