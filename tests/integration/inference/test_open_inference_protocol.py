"""The Open Inference Protocol v2 over REST through the gateway, spoken by `tritonclient.http` unchanged:
health, model metadata and readiness (by name, id and version), inference with binary and JSON tensors
equal to a bare ONNX Runtime session on the same tensor, and errors a client can read."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from .conftest import unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(admin_token: str, stack: Any, onnx_export: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=60) as api:
        response = api.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("oip")})
    assert response.status_code == 201 and response.json()["status"] == "ready", response.text
    return dict(response.json())


@pytest.fixture()
def client(stack: Any) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=urlparse(stack.cfg.gateway_url).netloc)


def _tensor(photo: Path) -> np.ndarray:
    """The documented preprocessing: square letterbox to 64 (grey 114), RGB, /255, NCHW float32."""
    image = cv2.imread(str(photo))
    h, w = image.shape[:2]
    r = min(64 / h, 64 / w)
    nw, nh = round(w * r), round(h * r)
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (64 - nw) / 2, (64 - nh) / 2
    image = cv2.copyMakeBorder(image, round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1),
                               cv2.BORDER_CONSTANT, value=(114, 114, 114))  # fmt: skip
    return np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def test_health_metadata_and_readiness(client: triton.InferenceServerClient, deployment: dict, admin_token: str):
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert client.is_server_live() and client.is_server_ready()  # no token: health
    assert client.get_server_metadata(headers=auth)["extensions"] == ["binary_tensor_data"]
    name, version = deployment["name"], str(deployment["export_version"])
    for model in (name, deployment["id"]):
        assert client.is_model_ready(model, headers=auth)
        assert client.is_model_ready(model, model_version=version, headers=auth)
    assert not client.is_model_ready(name, model_version="999", headers=auth)
    assert not client.is_model_ready("no-such-model", headers=auth)
    meta = client.get_model_metadata(name, headers=auth)
    assert meta["versions"] == [version] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [1, 3, 64, 64]}]
    classes = len(deployment["classes"])
    assert meta["outputs"][0]["datatype"] == "FP32" and meta["outputs"][0]["shape"][:2] == [1, 4 + classes]
    with pytest.raises(InferenceServerException):
        client.get_model_metadata(name)  # no token


@pytest.mark.parametrize("binary", [True, False])
def test_infer_equals_a_bare_onnx_runtime_session(
    client: triton.InferenceServerClient,
    deployment: dict,
    admin_token: str,
    photos: dict,
    onnx_file: Path,
    binary: bool,
):
    auth = {"Authorization": f"Bearer {admin_token}"}
    x = _tensor(photos["wide-1280x720.jpg"])
    expected = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    tensor = triton.InferInput("images", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    result = client.infer(
        deployment["name"],
        [tensor],
        outputs=[triton.InferRequestedOutput("output0", binary_data=binary)],
        headers=auth,
        request_id="r-1",
    )
    got = result.as_numpy("output0")
    assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-4)
    assert result.get_response()["model_version"] == str(deployment["export_version"])
    assert result.get_response()["id"] == "r-1"


def test_errors_a_client_can_read(
    client: triton.InferenceServerClient, deployment: dict, admin_token: str, other_project: dict
):
    auth = {"Authorization": f"Bearer {admin_token}"}
    wrong = triton.InferInput("images", [1, 3, 32, 32], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(InferenceServerException, match="does not fit"):
        client.infer(deployment["name"], [wrong], headers=auth)
    named = triton.InferInput("pixels", [1, 3, 64, 64], "FP32")
    named.set_data_from_numpy(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(InferenceServerException, match="unexpected input"):
        client.infer(deployment["name"], [named], headers=auth)
    good = triton.InferInput("images", [1, 3, 64, 64], "FP32")
    good.set_data_from_numpy(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(InferenceServerException, match="unknown model"):
        # another project's model is missing (a copy: tritonclient adds its own headers to the dict it is given)
        client.infer(deployment["name"], [good], headers=dict(other_project))
    assert not client.is_model_ready(deployment["name"], headers=dict(other_project))


def test_a_stopped_deployment_is_not_ready(
    client: triton.InferenceServerClient, deployment: dict, admin: httpx.Client, admin_token: str
):
    auth = {"Authorization": f"Bearer {admin_token}"}
    admin.post(f"/api/v1/deployments/{deployment['id']}/deactivate")
    try:
        assert not client.is_model_ready(deployment["name"], headers=auth)
        good = triton.InferInput("images", [1, 3, 64, 64], "FP32")
        good.set_data_from_numpy(np.zeros((1, 3, 64, 64), np.float32))
        with pytest.raises(InferenceServerException, match="stopped"):
            client.infer(deployment["name"], [good], headers=auth)
    finally:
        admin.post(f"/api/v1/deployments/{deployment['id']}/activate")
    assert client.is_model_ready(deployment["name"], headers=auth)
