"""Predict through the gateway: the same detections as Ultralytics' own predict on the same exported
file (several sizes, EXIF orientation, PNG and JPEG), the three request forms, parameters, hostile images
refused by index, and serving only while ready, only to the deployment's project."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from .conftest import bomb_png, unique

pytestmark = pytest.mark.integration
CONF = 0.001  # as low as validation: a one-epoch model's boxes are faint, and the comparison needs some


@pytest.fixture(scope="module")
def deployment(stack: Any, admin_token: str, onnx_export: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=60) as api:
        response = api.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("predict")})
    assert response.status_code == 201 and response.json()["status"] == "ready", response.text
    return dict(response.json())


def _ultralytics(onnx_file: Path, image: Path) -> list[tuple[int, float, list[float]]]:
    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    result = YOLO(str(onnx_file), task="detect").predict(str(image), imgsz=64, conf=CONF, iou=0.7, verbose=False)[0]
    boxes = result.boxes
    return [
        (int(c), float(s), [float(v) for v in b])
        for c, s, b in zip(boxes.cls.numpy(), boxes.conf.numpy(), boxes.xyxy.numpy(), strict=True)
    ]


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def test_detections_match_ultralytics_predict(
    admin: httpx.Client, deployment: dict, photos: dict[str, Path], onnx_file: Path
):
    names = list(photos)
    files = [("file", (n, photos[n].read_bytes(), "image/jpeg")) for n in names]
    response = admin.post(f"/api/v1/deployments/{deployment['id']}/predict", params={"conf": CONF}, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["export_id"] == deployment["export_id"] and body["task"] == "detect"
    assert [r["index"] for r in body["images"]] == list(range(len(names)))
    compared = 0
    for name, result in zip(names, body["images"], strict=True):
        expected = _ultralytics(onnx_file, photos[name])
        ours = result["detections"]
        assert len(ours) == len(expected), name
        unmatched = list(ours)
        for cls, score, box in expected:  # equal scores may come in either order: match, do not zip
            same = [d for d in unmatched if d["class_id"] == cls]
            assert same, (name, cls, score)
            got = max(same, key=lambda d: _iou(d["xyxy"], box) - abs(d["confidence"] - score))
            unmatched.remove(got)
            assert _iou(got["xyxy"], box) >= 0.99 and abs(got["confidence"] - score) <= 0.01, (name, got, box, score)
            w, h = result["width"], result["height"]
            x, y, bw, bh = got["xywhn"]
            x1, y1, x2, y2 = got["xyxy"]
            assert np.allclose([x * w, y * h, bw * w, bh * h], [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
            compared += 1
        assert set(result["timings_ms"]) == {"decode", "preprocess", "inference", "postprocess"}
    assert compared > 0, "no detections to compare at this conf"
    sizes = {n: (r["width"], r["height"]) for n, r in zip(names, body["images"], strict=True)}
    assert sizes["wide-1280x720.jpg"] == (1280, 720) and sizes["exif-rotated.jpg"] == (240, 320)  # EXIF applied


def test_raw_body_json_base64_and_parameters(admin: httpx.Client, deployment: dict, photos: dict[str, Path]):
    url = f"/api/v1/deployments/{deployment['id']}/predict"
    data = photos["vga-640x480.jpg"].read_bytes()
    raw = admin.post(url, params={"conf": CONF}, content=data, headers={"Content-Type": "image/jpeg"})
    assert raw.status_code == 200, raw.text
    encoded = admin.post(url, json={"images": [base64.b64encode(data).decode()], "conf": CONF})
    assert encoded.status_code == 200, encoded.text
    assert raw.json()["images"][0]["detections"] == encoded.json()["images"][0]["detections"]
    limited = admin.post(url, params={"conf": CONF, "max_det": 1, "classes": "0"}, content=data,
                         headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert limited.status_code == 200 and len(limited.json()["images"][0]["detections"]) <= 1
    assert all(d["class_id"] == 0 for d in limited.json()["images"][0]["detections"])
    form = admin.post(url, data={"conf": "0.9"}, files=[("file", ("a.jpg", data, "image/jpeg"))])
    assert form.status_code == 200 and form.json()["parameters"]["conf"] == 0.9

    bad = admin.post(url, params={"conf": 2, "classes": "99", "imgsz": 640}, content=data,
                     headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert bad.status_code == 422, bad.text
    assert {e["pointer"] for e in bad.json()["errors"]} == {"#/conf", "#/classes", "#/imgsz"}
    assert {e["code"] for e in bad.json()["errors"]} >= {"invalid_parameter", "imgsz_not_supported"}
    unsupported = admin.post(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert unsupported.status_code == 415 and unsupported.json()["code"] == "unsupported_media_type"
    none = admin.post(url, json={"images": []})
    assert none.status_code == 422 and none.json()["code"] == "no_images"


def test_hostile_images_are_refused_by_index(admin: httpx.Client, deployment: dict, photos: dict[str, Path]):
    gif = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw==")
    files = [
        ("file", ("ok.jpg", photos["vga-640x480.jpg"].read_bytes(), "image/jpeg")),
        ("file", ("empty.jpg", b"", "image/jpeg")),
        ("file", ("garbage.jpg", b"not an image at all", "image/jpeg")),
        ("file", ("bomb.png", bomb_png(), "image/png")),
        ("file", ("tiny.gif", gif, "image/gif")),
        ("file", ("truncated.jpg", photos["vga-640x480.jpg"].read_bytes()[:200], "image/jpeg")),
    ]
    response = admin.post(f"/api/v1/deployments/{deployment['id']}/predict", files=files)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    codes = {e["pointer"]: e["code"] for e in problem["errors"]}
    assert codes == {
        "#/images/1": "image_empty",
        "#/images/2": "image_undecodable",
        "#/images/3": "image_too_many_pixels",
        "#/images/4": "image_unsupported",
        "#/images/5": "image_undecodable",
    }


def test_serves_only_ready_deployments_of_the_callers_project(
    admin: httpx.Client, onnx_export: dict, photos: dict[str, Path], other_project: dict[str, str]
):
    did = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("s")}).json()["id"]
    url = f"/api/v1/deployments/{did}/predict"
    image = {"content": photos["small-96.png"].read_bytes(), "headers": {"Content-Type": "image/png"}}
    assert admin.post(url, **image).status_code == 200
    with httpx.Client(base_url=str(admin.base_url), headers=other_project, timeout=30) as other:
        foreign = other.post(url, **image)
    assert foreign.status_code == 404 and foreign.json()["code"] == "deployment_not_found"
    admin.post(f"/api/v1/deployments/{did}/deactivate")
    stopped = admin.post(url, **image)
    assert stopped.status_code == 409 and stopped.json()["code"] == "deployment_not_ready"
    admin.post(f"/api/v1/deployments/{did}/activate")
    assert admin.post(url, **image).status_code == 200
    admin.delete(f"/api/v1/deployments/{did}")
    assert admin.post(url, **image).status_code == 404
    assert httpx.post(f"{admin.base_url}{url}", **image).status_code == 401


def test_metrics_count_loads_predictions_and_errors(stack: Any, admin_token: str, deployment: dict):
    url = f"{stack.cfg.service_url('inference')}/metrics"
    text = httpx.get(url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10).text
    assert "vtp_inference_model_loads_total" in text
    assert f'vtp_inference_predict_images_total{{deployment="{deployment["id"]}"}}' in text
    assert 'vtp_inference_predict_errors_total{code="validation_failed"}' in text  # the hostile images
