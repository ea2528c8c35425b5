"""The Open Inference Protocol v2 over gRPC, spoken by `tritonclient.grpc` unchanged, on the inference
service's own port: health, metadata, readiness, configuration and repository index; inference on the
model's own tensors equal to the REST transport and to a bare ONNX Runtime session; status codes a client
can act on. tritonclient's grpc extra declares protobuf<6; it runs here on the platform's protobuf 7."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import grpc
import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from ..export.conftest import wait_for
from .conftest import oip_tensor, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(admin_token: str, stack: Any, onnx_export: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=60) as api:
        response = api.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("grpc")})
    assert response.status_code == 201 and response.json()["status"] == "ready", response.text
    return dict(response.json())


@pytest.fixture()
def client(stack: Any) -> triton_grpc.InferenceServerClient:
    return triton_grpc.InferenceServerClient(url=f"{stack.cfg.host}:{stack.cfg.inference_grpc_port}")


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}  # gRPC metadata keys are lower case


def _status(call: Any) -> str:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return str(caught.value.status())


def _input(x: np.ndarray, name: str = "images") -> triton_grpc.InferInput:
    tensor = triton_grpc.InferInput(name, list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return tensor


def test_health_metadata_config_and_index(
    client: triton_grpc.InferenceServerClient, deployment: dict, admin_token: str
):
    auth = _auth(admin_token)
    assert client.is_server_live() and client.is_server_ready()  # no token: health
    assert client.get_server_metadata(headers=auth).name == "vtp-inference"
    name, version = deployment["name"], str(deployment["export_version"])
    for model in (name, deployment["id"]):
        assert client.is_model_ready(model, headers=auth)
        assert client.is_model_ready(model, model_version=version, headers=auth)
    assert not client.is_model_ready(name, model_version="999", headers=auth)
    assert not client.is_model_ready("no-such-model", headers=auth)
    meta = client.get_model_metadata(name, headers=auth, as_json=True)
    assert meta["versions"] == [version] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": ["1", "3", "64", "64"]}]
    assert meta["outputs"][0]["shape"][:2] == ["1", str(4 + len(deployment["classes"]))]
    config = client.get_model_config(name, headers=auth).config
    assert config.input[0].name == "images" and list(config.input[0].dims) == [1, 3, 64, 64]
    index = client.get_model_repository_index(headers=auth).models
    assert any(m.name == name and m.version == version and m.state == "READY" for m in index)
    assert _status(lambda: client.get_model_metadata(name)) == "StatusCode.UNAUTHENTICATED"
    assert _status(lambda: client.get_model_metadata(name, headers=_auth("vtp_not-a-token"))) == (
        "StatusCode.UNAUTHENTICATED"
    )
    assert _status(lambda: client.get_model_metadata("no-such-model", headers=auth)) == "StatusCode.NOT_FOUND"


def test_infer_equals_rest_and_a_bare_onnx_runtime_session(
    client: triton_grpc.InferenceServerClient,
    stack: Any,
    deployment: dict,
    admin_token: str,
    photos: dict,
    onnx_file: Path,
):
    x = oip_tensor(photos["wide-1280x720.jpg"])
    expected = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    result = client.infer(
        deployment["name"],
        [_input(x)],
        outputs=[triton_grpc.InferRequestedOutput("output0")],
        headers=_auth(admin_token),
        request_id="g-1",
    )
    got = result.as_numpy("output0")
    assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-4)
    response = result.get_response()
    assert response.id == "g-1" and response.model_version == str(deployment["export_version"])
    rest = triton_http.InferenceServerClient(url=urlparse(stack.cfg.gateway_url).netloc)
    over_rest = triton_http.InferInput("images", list(x.shape), "FP32")
    over_rest.set_data_from_numpy(x)
    same = rest.infer(deployment["id"], [over_rest], headers={"Authorization": f"Bearer {admin_token}"})
    assert np.allclose(same.as_numpy("output0"), got, atol=1e-6)


def test_status_codes_a_client_can_act_on(
    client: triton_grpc.InferenceServerClient,
    deployment: dict,
    admin_token: str,
    admin: httpx.Client,
    other_project: dict,
):
    auth, name = _auth(admin_token), deployment["name"]
    good = np.zeros((1, 3, 64, 64), np.float32)
    invalid = "StatusCode.INVALID_ARGUMENT"
    assert _status(lambda: client.infer(name, [_input(np.zeros((1, 3, 32, 32), np.float32))], headers=auth)) == invalid
    assert _status(lambda: client.infer(name, [_input(good, "pixels")], headers=auth)) == invalid
    assert _status(lambda: client.infer(name, [_input(good * np.nan)], headers=auth)) == invalid
    wrong_output = [triton_grpc.InferRequestedOutput("boxes")]
    assert _status(lambda: client.infer(name, [_input(good)], outputs=wrong_output, headers=auth)) == invalid
    assert _status(lambda: client.infer(name, [_input(good)])) == "StatusCode.UNAUTHENTICATED"
    assert _status(lambda: client.infer(name, [_input(good)], model_version="999", headers=auth)) == (
        "StatusCode.NOT_FOUND"
    )
    # another project's model is missing
    other = _auth(other_project["Authorization"].split(" ", 1)[1])
    assert _status(lambda: client.infer(name, [_input(good)], headers=other)) == "StatusCode.NOT_FOUND"
    assert not client.is_model_ready(name, headers=other)
    admin.post(f"/api/v1/deployments/{deployment['id']}/deactivate")
    try:
        assert not client.is_model_ready(name, headers=auth)
        with pytest.raises(InferenceServerException, match="model_not_ready") as caught:
            client.infer(name, [_input(good)], headers=auth)
        assert str(caught.value.status()) == "StatusCode.UNAVAILABLE"
    finally:
        admin.post(f"/api/v1/deployments/{deployment['id']}/activate")
    assert client.is_model_ready(name, headers=auth)


def test_a_large_input_fits_the_message_limit(stack: Any, admin_token: str):
    """A 640x640 tensor (4.9 MB) exceeds gRPC's default 4 MiB: the server accepts up to VTP_GRPC_MAX_MESSAGE_BYTES."""
    channel = grpc.insecure_channel(f"{stack.cfg.host}:{stack.cfg.inference_grpc_port}")
    try:
        stub = triton_grpc.service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = triton_grpc.service_pb2.ModelInferRequest(model_name="no-such-model")
        request.raw_input_contents.append(bytes(3 * 640 * 640 * 4))
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, metadata=list(_auth(admin_token).items()))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # read whole, then refused for its model
    finally:
        channel.close()


def test_grpc_inferences_are_metered(
    client: triton_grpc.InferenceServerClient, deployment: dict, admin: httpx.Client, admin_token: str
):
    """Usage counts gRPC requests like REST ones (flushed every few seconds: polled)."""

    def total() -> dict[str, Any]:
        response = admin.get(f"/api/v1/deployments/{deployment['id']}/usage")
        assert response.status_code == 200, response.text
        return dict(response.json()["total"])

    before = total()
    x = np.zeros((1, 3, 64, 64), np.float32)
    for _ in range(3):
        client.infer(deployment["name"], [_input(x)], headers=_auth(admin_token))
    _status(lambda: client.infer(deployment["name"], [_input(x, "pixels")], headers=_auth(admin_token)))
    after = wait_for(total, lambda t: t["requests"] >= before["requests"] + 4, 60)
    assert after["images"] >= before["images"] + 3
    assert after["errors_by_code"].get("invalid_inference_request", 0) >= 1


def test_api_keys_scopes_and_rate_limits(
    client: triton_grpc.InferenceServerClient, deployment: dict, admin: httpx.Client, onnx_export: dict
):
    """An API key works as `authorization: Bearer` or `api-key` metadata; a key of another deployment is
    PERMISSION_DENIED; over its limit RESOURCE_EXHAUSTED."""
    limited = admin.post(
        f"/api/v1/deployments/{deployment['id']}/keys", json={"name": "grpc", "limits": {"per_minute": 2}}
    )
    assert limited.status_code == 201, limited.text
    secret = limited.json()["secret"]
    x = np.zeros((1, 3, 64, 64), np.float32)
    client.infer(deployment["name"], [_input(x)], headers={"authorization": f"Bearer {secret}"})
    client.infer(deployment["name"], [_input(x)], headers={"api-key": secret})
    assert _status(lambda: client.infer(deployment["name"], [_input(x)], headers={"api-key": secret})) == (
        "StatusCode.RESOURCE_EXHAUSTED"
    )
    other = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("grpc-other")})
    assert other.status_code == 201, other.text
    elsewhere = admin.post(f"/api/v1/deployments/{other.json()['id']}/keys", json={"name": "elsewhere"}).json()
    headers = {"api-key": elsewhere["secret"]}
    assert _status(lambda: client.infer(deployment["name"], [_input(x)], headers=headers)) == (
        "StatusCode.PERMISSION_DENIED"
    )
    index = client.get_model_repository_index(headers=headers).models
    assert [m.name for m in index] == [other.json()["name"]]  # a key lists what it reaches
    assert _status(lambda: client.infer(deployment["name"], [_input(x)], headers={"api-key": "vtpk_" + "x" * 40})) == (
        "StatusCode.UNAUTHENTICATED"
    )
