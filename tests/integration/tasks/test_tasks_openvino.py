"""Segment, pose and classify on the OpenVINO runtime: each task's OpenVINO export, deployed with
`runtime: "openvino"`, answers the package's photos as the ONNX Runtime deployment of the same job does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from vtp_localstack.stack import LocalStack

from .conftest import TASKS
from .test_tasks_predict import groups, mask_iou, match, predict, raster

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


def _pairs(
    admin: httpx.Client, task: str, deployments: dict, openvino_deployments: dict, photos: dict[str, Path]
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(photo, ONNX Runtime's answer, OpenVINO's answer) per photo."""
    onnx = predict(admin, deployments[task], photos)["images"]
    ov = predict(admin, openvino_deployments[task], photos)["images"]
    return list(zip(photos, onnx, ov, strict=True))


def _compared(reference: list[dict[str, Any]], ours: list[dict[str, Any]], name: str) -> list[tuple[dict, list]]:
    """Each of ONNX Runtime's detections with OpenVINO's that answer it (same class, box IoU >= 0.99, confidence
    within 0.01); one tied in score with another of its class may be answered by the other anchor (NMS order)."""
    rows = np.asarray([[*d["xyxy"], d["confidence"], d["class_id"]] for d in reference]).reshape(-1, 6)
    same = groups(rows) if len(rows) else []
    pairs = []
    for k, d in enumerate(reference):
        candidates = match(ours, d["class_id"], d["confidence"], d["xyxy"])
        assert candidates or len(same[k]) > 1, (name, d)
        if candidates:
            pairs.append((d, candidates))
    assert abs(len(ours) - len(reference)) <= sum(len(g) > 1 for g in same), (name, len(ours), len(reference))
    return pairs


def test_segment_on_openvino_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, openvino_deployments: dict, photos: dict[str, Path]
):
    compared = 0
    for name, onnx, ov in _pairs(admin, "segment", deployments, openvino_deployments, photos):
        shape = (onnx["height"], onnx["width"])
        assert (ov["height"], ov["width"]) == shape, name
        for d, candidates in _compared(onnx["detections"], ov["detections"], name):
            reference = raster(d["polygons"], shape)
            assert max(mask_iou(raster(c["polygons"], shape), reference) for c in candidates) >= 0.95, (name, d)
            compared += 1
    assert compared > 0


def test_pose_on_openvino_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, openvino_deployments: dict, photos: dict[str, Path]
):
    compared, worst = 0, 0.0
    for name, onnx, ov in _pairs(admin, "pose", deployments, openvino_deployments, photos):
        for d, candidates in _compared(onnx["detections"], ov["detections"], name):
            distance = min(float(np.abs(np.subtract(c["keypoints"], d["keypoints"])).max()) for c in candidates)
            assert distance < 0.1, (name, d, distance)  # pixels of the photo (x, y) and visibility score
            compared, worst = compared + 1, max(worst, distance)
    assert compared > 0
    print("pose instances", compared, "max keypoint difference", worst)


def test_classify_on_openvino_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, openvino_deployments: dict, photos: dict[str, Path]
):
    for name, onnx, ov in _pairs(admin, "classify", deployments, openvino_deployments, photos):
        assert ov["top5"][0]["class_id"] == onnx["top5"][0]["class_id"], name
        probs = {e["class_id"]: e["confidence"] for e in onnx["top5"]}
        assert {e["class_id"] for e in ov["top5"]} == set(probs), name
        assert max(abs(e["confidence"] - probs[e["class_id"]]) for e in ov["top5"]) <= 0.01, name


def test_oip_metadata_of_an_openvino_segment_model_lists_both_outputs(admin: httpx.Client, openvino_deployments: dict):
    meta = admin.get(f"/v2/models/{openvino_deployments['segment']['name']}").json()
    assert meta["platform"] == "openvino" and [o["name"] for o in meta["outputs"]] == ["output0", "output1"]
