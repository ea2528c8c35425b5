"""Deployments of segment, pose and classify exports: predict answers per task that match Ultralytics' own
predict on the same ONNX file (several sizes, EXIF orientation, PNG and JPEG), and the OIP metadata lists
each task's outputs."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from vtp_localstack.stack import LocalStack

from ..inference.conftest import oip_tensor
from .conftest import TASKS

pytestmark = pytest.mark.integration
CONF = 0.001  # a one-epoch model's scores are faint: compare at validation's threshold
IMGSZ = 64


def _client(stack: LocalStack, admin_token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.cfg.gateway_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=120)


@pytest.fixture(scope="module")
def onnx_files(
    stack: LocalStack, admin_token: str, task_exports: dict[str, dict[str, Any]], tmp_path_factory: Any
) -> dict[str, Path]:
    files = {}
    for task in TASKS:
        with _client(stack, admin_token) as admin:
            data = admin.get(f"/api/v1/exports/{task_exports[task]['id']}/download", timeout=120).content
        root = tmp_path_factory.mktemp(f"onnx-{task}")
        zipfile.ZipFile(io.BytesIO(data)).extract("model.onnx", root)
        files[task] = root / "model.onnx"
    return files


def _ultralytics(task: str, onnx_file: Path, image: Path) -> Any:
    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    return YOLO(str(onnx_file), task=task).predict(str(image), imgsz=IMGSZ, conf=CONF, iou=0.7, verbose=False)[0]


def predict(admin: httpx.Client, deployment: dict[str, Any], photos: dict[str, Path]) -> dict[str, Any]:
    files = [
        ("file", (n, p.read_bytes(), "image/png" if n.endswith(".png") else "image/jpeg")) for n, p in photos.items()
    ]
    response = admin.post(
        f"/api/v1/deployments/{deployment['id']}/predict", params={"conf": CONF}, files=files, timeout=120
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == deployment["task_type"] and body["export_id"] == deployment["export_id"]
    assert [r["index"] for r in body["images"]] == list(range(len(photos)))
    return body


def iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def raster(polygons: list, shape: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    pts = [np.round(np.asarray(p, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2) for p in polygons if len(p)]
    if pts:
        cv2.fillPoly(canvas, pts, 1)
    return canvas


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def _same_count(ours: list[dict[str, Any]], expected: Any, name: str) -> None:
    """As many instances as Ultralytics, but for those tied in score (NMS keeps either anchor of a tie, and
    one anchor's mask may be empty where the other's is not)."""
    tied = sum(t for *_, t in _instances(expected))
    assert abs(len(ours) - len(expected.boxes)) <= tied, (name, len(ours), len(expected.boxes), tied)


def groups(rows: np.ndarray) -> list[list[int]]:
    same = (rows[:, None, 5] == rows[None, :, 5]) & (np.abs(rows[:, None, 4] - rows[None, :, 4]) < 1e-6)
    return [np.flatnonzero(r).tolist() for r in same]


def match(ours: list[dict[str, Any]], cls: int, score: float, box: list[float]) -> list[dict[str, Any]]:
    """Our detections that answer one of Ultralytics' (same class, box IoU >= 0.99, confidence within 0.01),
    the closest first, with those tied to it in score (either may carry the mask or keypoints); [] if none."""
    same = [d for d in ours if d["class_id"] == cls]
    ranked = sorted(same, key=lambda d: iou(d["xyxy"], box) - abs(d["confidence"] - score), reverse=True)
    if not ranked or iou(ranked[0]["xyxy"], box) < 0.99 or abs(ranked[0]["confidence"] - score) > 0.01:
        return []
    top = ranked[0]["confidence"]
    return [d for d in ranked if iou(d["xyxy"], box) >= 0.99 and abs(d["confidence"] - top) < 1e-6]


def _instances(expected: Any) -> list[tuple[int, int, float, list[float], bool]]:
    """Ultralytics' instances: index, class, score, box, and whether it ties another of its class in score.

    A tied instance survives NMS by sort order alone, so ours may be another anchor: it must match when
    untied, and is compared when a match exists."""
    boxes = expected.boxes
    rows = np.concatenate([boxes.xyxy.numpy(), boxes.conf.numpy()[:, None], boxes.cls.numpy()[:, None]], 1)
    same = groups(rows)
    return [(k, int(r[5]), float(r[4]), [float(v) for v in r[:4]], len(same[k]) > 1) for k, r in enumerate(rows)]


def test_segment_answers_boxes_and_polygons_like_ultralytics(
    admin: httpx.Client, deployments: dict, onnx_files: dict[str, Path], photos: dict[str, Path]
):
    body = predict(admin, deployments["segment"], photos)
    compared = 0
    for (name, path), result in zip(photos.items(), body["images"], strict=True):
        expected = _ultralytics("segment", onnx_files["segment"], path)
        shape = expected.orig_shape
        assert (result["height"], result["width"]) == tuple(shape), name  # EXIF applied alike
        ours = result["detections"]
        _same_count(ours, expected, name)
        if not len(expected.boxes):
            continue
        polys = expected.masks.xy
        for k, cls, score, box, tied in _instances(expected):
            candidates = match(ours, cls, score, box)
            assert candidates or tied, (name, k, cls, score, box)
            if not candidates:
                continue
            assert set(candidates[0]) >= {"xyxy", "xywhn", "class_id", "class_name", "confidence", "polygons"}
            assert all(len(p) >= 1 and len(p[0]) == 2 for p in candidates[0]["polygons"])
            reference = raster([polys[k]], shape)
            assert max(mask_iou(raster(d["polygons"], shape), reference) for d in candidates) >= 0.9, (name, k)
            compared += 1
    assert compared > 0


def test_pose_answers_boxes_and_keypoints_like_ultralytics(
    admin: httpx.Client, deployments: dict, onnx_files: dict[str, Path], photos: dict[str, Path]
):
    body = predict(admin, deployments["pose"], photos)
    compared = 0
    for (name, path), result in zip(photos.items(), body["images"], strict=True):
        expected = _ultralytics("pose", onnx_files["pose"], path)
        ours = result["detections"]
        _same_count(ours, expected, name)
        kpts = expected.keypoints.data.numpy() if len(expected.boxes) else []
        for k, cls, score, box, tied in _instances(expected):
            candidates = match(ours, cls, score, box)
            assert candidates or tied, (name, k, cls, score, box)
            if not candidates:
                continue
            assert np.asarray(candidates[0]["keypoints"]).shape == (3, 3)  # x, y, visibility score per keypoint
            distance = min(np.abs(np.asarray(d["keypoints"]) - kpts[k]).max() for d in candidates)
            assert distance < 0.05, (name, k, distance)
            compared += 1
    assert compared > 0


def test_classify_answers_top5_like_ultralytics(
    admin: httpx.Client, deployments: dict, onnx_files: dict[str, Path], photos: dict[str, Path]
):
    body = predict(admin, deployments["classify"], photos)
    for (name, path), result in zip(photos.items(), body["images"], strict=True):
        expected = _ultralytics("classify", onnx_files["classify"], path)
        top5 = result["top5"]
        assert "detections" not in result and len(top5) == 3  # three classes
        assert top5[0]["class_id"] == expected.probs.top1, name
        probs = expected.probs.data.numpy()
        for entry in top5:
            assert abs(entry["confidence"] - float(probs[entry["class_id"]])) <= 0.01, (name, entry)
            assert entry["class_name"] in ("circle", "square", "triangle")
        assert set(result["timings_ms"]) == {"decode", "preprocess", "inference", "postprocess"}


def test_oip_metadata_lists_each_task_outputs(admin: httpx.Client, deployments: dict):
    shapes = {}
    for task in TASKS:
        response = admin.get(f"/v2/models/{deployments[task]['name']}")
        assert response.status_code == 200, response.text
        shapes[task] = {o["name"]: o["shape"] for o in response.json()["outputs"]}
    assert set(shapes["segment"]) == {"output0", "output1"}
    assert shapes["segment"]["output0"][1] == 4 + 3 + 32 and shapes["segment"]["output1"][1:] == [32, 16, 16]
    assert next(iter(shapes["pose"].values()))[1] == 4 + 3 + 9
    assert list(shapes["classify"].values()) == [[1, 3]]


def test_oip_rest_infer_answers_both_segment_outputs(
    stack: LocalStack, admin_token: str, deployments: dict, onnx_files: dict[str, Path], photos: dict[str, Path]
):
    """tritonclient.http, binary tensors: every output by default, or the one asked for; the model's own."""
    from urllib.parse import urlparse

    import onnxruntime as ort
    import tritonclient.http as triton_http

    tensor = oip_tensor(photos["vga-640x480.jpg"], IMGSZ)
    want = ort.InferenceSession(str(onnx_files["segment"])).run(None, {"images": tensor})
    client = triton_http.InferenceServerClient(url=urlparse(stack.cfg.gateway_url).netloc)
    auth = {"Authorization": f"Bearer {admin_token}"}
    inp = triton_http.InferInput("images", list(tensor.shape), "FP32")
    inp.set_data_from_numpy(tensor, binary_data=True)
    name = deployments["segment"]["name"]
    both = client.infer(name, [inp], headers=auth)
    for k, out in enumerate(("output0", "output1")):
        assert np.abs(both.as_numpy(out) - want[k]).max() < 1e-4, out
    only = client.infer(name, [inp], outputs=[triton_http.InferRequestedOutput("output1")], headers=auth)
    assert only.as_numpy("output0") is None and only.as_numpy("output1").shape == want[1].shape


def test_oip_grpc_metadata_and_config_list_the_segment_outputs(stack: LocalStack, admin_token: str, deployments: dict):
    import tritonclient.grpc as triton_grpc

    client = triton_grpc.InferenceServerClient(url=f"{stack.cfg.host}:{stack.cfg.inference_grpc_port}")
    auth = {"authorization": f"Bearer {admin_token}"}
    name = deployments["segment"]["name"]
    meta = client.get_model_metadata(name, headers=auth, as_json=True)
    assert [o["name"] for o in meta["outputs"]] == ["output0", "output1"]
    assert meta["outputs"][1]["shape"] == ["1", "32", "16", "16"]
    config = client.get_model_config(name, headers=auth).config
    assert [o.name for o in config.output] == ["output0", "output1"]


def test_oip_grpc_infer_answers_the_segment_outputs_asked(
    stack: LocalStack, admin_token: str, deployments: dict, onnx_files: dict[str, Path], photos: dict[str, Path]
):
    """tritonclient.grpc: every output when none is asked (as REST), those asked in their order, unknown refused."""
    import onnxruntime as ort
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    tensor = oip_tensor(photos["vga-640x480.jpg"], IMGSZ)
    want = ort.InferenceSession(str(onnx_files["segment"])).run(None, {"images": tensor})
    client = triton_grpc.InferenceServerClient(url=f"{stack.cfg.host}:{stack.cfg.inference_grpc_port}")
    auth = {"authorization": f"Bearer {admin_token}"}
    inp = triton_grpc.InferInput("images", list(tensor.shape), "FP32")
    inp.set_data_from_numpy(tensor)
    name = deployments["segment"]["name"]
    both = client.infer(name, [inp], headers=auth)
    assert [o.name for o in both.get_response().outputs] == ["output0", "output1"]
    for k, out in enumerate(("output0", "output1")):
        assert np.abs(both.as_numpy(out) - want[k]).max() < 1e-4, out
    asked = [triton_grpc.InferRequestedOutput("output1"), triton_grpc.InferRequestedOutput("output0")]
    reordered = client.infer(name, [inp], outputs=asked, headers=auth)
    assert [o.name for o in reordered.get_response().outputs] == ["output1", "output0"]
    assert np.array_equal(reordered.as_numpy("output1"), both.as_numpy("output1"))
    only = client.infer(name, [inp], outputs=[triton_grpc.InferRequestedOutput("output1")], headers=auth)
    assert only.as_numpy("output0") is None and only.as_numpy("output1").shape == want[1].shape
    with pytest.raises(InferenceServerException) as caught:
        client.infer(name, [inp], outputs=[triton_grpc.InferRequestedOutput("masks")], headers=auth)
    assert str(caught.value.status()) == "StatusCode.INVALID_ARGUMENT"
    assert "invalid_inference_request" in caught.value.message()
