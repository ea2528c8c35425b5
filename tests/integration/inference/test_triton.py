"""The triton runtime on a real Triton server (tritonserver 2.51 from the nvidia-pytriton wheel, Python
backend wrapping ONNX Runtime, started by the local stack): a deployment is loaded into Triton through its
repository API, predicts like the ONNX Runtime deployment of the same export, answers the Open Inference
Protocol through the gateway, and a corrupt model fails alone while Triton keeps serving the others; a
replica configured without Triton refuses the runtime (runtime_unavailable)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http

from vtp_localstack import triton
from vtp_localstack.ports import free_port
from vtp_localstack.processes import ProcessSpec, ProcessTable, wait_until
from vtp_localstack.services import service_env, service_spec
from vtp_localstack.stack import LocalStack
from vtp_runtime.settings import StorageSettings
from vtp_runtime.storage import ObjectStore, store_from_settings

from .conftest import unique
from .test_predict import CONF, _iou

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def triton_server(stack: LocalStack) -> triton_http.InferenceServerClient:
    """The stack's own tritonserver (`make setup` fetches it; the stack starts it when present)."""
    assert triton.available(stack.cfg), "tritonserver is not fetched: run `python -m vtp_localstack.triton fetch`"
    client = triton_http.InferenceServerClient(f"{stack.cfg.host}:{stack.cfg.triton_port}")
    assert client.is_server_live()
    return client


def _create(admin: httpx.Client, export: dict[str, Any], runtime: str) -> dict[str, Any]:
    body = {"export_id": export["id"], "name": unique(runtime), "runtime": runtime}
    created = admin.post("/api/v1/deployments", json=body, timeout=120)
    assert created.status_code == 201 and created.json()["status"] == "ready", created.text
    return dict(created.json())


def _predict(admin: httpx.Client, deployment: dict[str, Any], photos: dict[str, Path]) -> httpx.Response:
    files = [("file", (n, p.read_bytes(), "image/jpeg")) for n, p in photos.items()]
    url = f"/api/v1/deployments/{deployment['id']}/predict"
    return admin.post(url, params={"conf": CONF}, files=files, timeout=60)


def _same_detections(ours: dict[str, Any], theirs: dict[str, Any]) -> int:
    compared = 0
    for a, b in zip(ours["images"], theirs["images"], strict=True):
        for d in [d for d in b["detections"] if d["confidence"] > CONF + 0.001]:  # clear of the threshold
            same = [o for o in a["detections"] if o["class_id"] == d["class_id"]]
            assert same, f"class {d['class_id']} missing"
            best = max(same, key=lambda o: _iou(o["xyxy"], d["xyxy"]))
            assert _iou(best["xyxy"], d["xyxy"]) >= 0.99 and abs(best["confidence"] - d["confidence"]) <= 0.01
            compared += 1
    return compared


def name_in_triton(stack: LocalStack, deployment: dict[str, Any]) -> str:
    """The Triton model of the deployment's current model: named by the deployment, its preparation's own
    random part and the model's sha256 (`vtp-<deployment>-<attempt>-<sha256[:12]>`), one folder."""
    pattern = f"vtp-{deployment['id']}-*-{deployment['model']['sha256'][:12]}"
    [folder] = triton.model_repository(stack.cfg).glob(pattern)
    return folder.name


def _store(stack: LocalStack) -> ObjectStore:
    cfg = stack.cfg
    settings = StorageSettings(
        s3_endpoint=cfg.s3_endpoint,
        s3_access_key=cfg.s3_access_key,
        s3_secret_key=cfg.s3_secret_key,
        s3_secure=cfg.s3_secure,
        s3_region=cfg.s3_region,
        storage_bucket=cfg.storage_bucket,
        storage_dir=str(cfg.run_path / "data" / "objects"),
    )
    return store_from_settings(settings)


def test_triton_deployment_serves_like_onnxruntime_and_a_corrupt_model_fails_alone(
    stack: LocalStack,
    admin: httpx.Client,
    admin_token: str,
    triton_server: triton_http.InferenceServerClient,
    onnx_export: dict[str, Any],
    photos: dict[str, Path],
):
    served = _create(admin, onnx_export, "triton")
    assert served["runtime"] == "triton"
    served_name = name_in_triton(stack, served)
    assert triton_server.is_model_ready(served_name)  # loaded through Triton's repository API
    repository = triton.model_repository(stack.cfg) / served_name
    assert 'backend: "python"' in (repository / "config.pbtxt").read_text()

    # Predict: the same detections as the ONNX Runtime deployment of the same export.
    reference = _create(admin, onnx_export, "onnxruntime")
    ours, theirs = _predict(admin, served, photos), _predict(admin, reference, photos)
    assert ours.status_code == theirs.status_code == 200, ours.text
    assert _same_detections(ours.json(), theirs.json()) > 0

    # The Open Inference Protocol through the gateway, binary tensors, against the Triton-served model.
    client = triton_http.InferenceServerClient(urlparse(stack.cfg.gateway_url).netloc)
    headers = {"Authorization": f"Bearer {admin_token}"}
    x = np.random.default_rng(3).random((1, 3, 64, 64), dtype=np.float32)
    outputs = {}
    for deployment in (served, reference):
        tensor = triton_http.InferInput("images", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=True)
        wanted = [triton_http.InferRequestedOutput("output0", binary_data=True)]
        result = client.infer(deployment["name"], [tensor], outputs=wanted, headers=headers)
        outputs[deployment["id"]] = result.as_numpy("output0")
    assert np.abs(outputs[served["id"]] - outputs[reference["id"]]).max() < 1e-3

    # A corrupt model: another triton deployment whose stored model file is altered, then reloaded.
    broken = _create(admin, onnx_export, "triton")
    broken_name = name_in_triton(stack, broken)
    store = _store(stack)
    keys = [k for k in asyncio.run(store.list_keys("deployments/")) if f"/{broken['id']}/" in k]
    model_key = next(k for k in keys if k.endswith("model.onnx"))
    asyncio.run(store.put_bytes(model_key, b"\x00" * 1024))
    assert admin.post(f"/api/v1/deployments/{broken['id']}/deactivate").status_code == 200
    assert not triton_server.is_model_ready(broken_name)  # unloaded
    assert admin.post(f"/api/v1/deployments/{broken['id']}/activate").status_code == 200
    refused = _predict(admin, broken, photos)
    assert refused.status_code == 503 and refused.json()["code"] == "model_unavailable", refused.text
    failed = admin.get(f"/api/v1/deployments/{broken['id']}").json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "MODEL_INTEGRITY"
    again = _predict(admin, served, photos)  # the others keep serving, through the same Triton
    assert again.status_code == 200 and _same_detections(again.json(), theirs.json()) > 0

    # Deleting the deployment unloads its model from Triton and removes it from the repository.
    assert admin.delete(f"/api/v1/deployments/{served['id']}").status_code == 204
    assert not triton_server.is_model_ready(served_name) and not repository.exists()


@pytest.fixture(scope="module")
def replica_without_triton(stack: LocalStack) -> Iterator[str]:
    """One more inference replica on the same stack, configured without a Triton server."""
    cfg, port = stack.cfg, free_port()
    env = {k: v for k, v in service_env(cfg, "inference").items() if not k.startswith("VTP_TRITON_")}
    env.update({"VTP_HTTP_PORT": str(port), "VTP_GRPC_PORT": "0"})
    spec = ProcessSpec("inference-no-triton", service_spec(cfg, "inference").argv, env=env, port=port, cwd=cfg.run_path)
    table = ProcessTable(cfg.run_path)
    table.start(spec)
    url = f"http://{cfg.host}:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 180, "inference replica without Triton", interval=0.5)
        yield url
    finally:
        table.stop(spec.name)


def test_runtime_triton_is_refused_where_no_triton_server_is_configured(
    replica_without_triton: str, admin_token: str, onnx_export: dict[str, Any]
):
    body = {"export_id": onnx_export["id"], "name": unique("no-triton"), "runtime": "triton"}
    headers = {"Authorization": f"Bearer {admin_token}"}
    refused = httpx.post(f"{replica_without_triton}/api/v1/deployments", json=body, headers=headers, timeout=60)
    assert refused.status_code == 422 and refused.json()["code"] == "runtime_unavailable", refused.text
    [problem] = refused.json()["errors"]
    assert problem["pointer"] == "#/body/runtime" and "VTP_TRITON_URL" in problem["message"]
    health = httpx.get(f"{replica_without_triton}/health", headers=headers, timeout=10).json()
    assert "postgres" in health["checks"] and "triton" not in health["checks"]  # this replica has no Triton


def test_a_refused_switch_leaves_no_extra_model_in_triton(
    stack: LocalStack,
    admin: httpx.Client,
    triton_server: triton_http.InferenceServerClient,
    onnx_export: dict[str, Any],
    second_export: dict[str, Any],
):
    served = _create(admin, onnx_export, "triton")
    taken = _create(admin, onnx_export, "onnxruntime")  # only its name matters
    body = {"export_id": second_export["id"], "name": taken["name"]}
    clash = admin.patch(f"/api/v1/deployments/{served['id']}", json=body, timeout=120)  # loaded, then refused
    assert clash.status_code == 409 and clash.json()["code"] == "deployment_name_taken", clash.text

    current = name_in_triton(stack, served)  # the one folder of the model it serves
    index = triton_server.get_model_repository_index()  # every model Triton knows, with its state
    mine = {m["name"]: m.get("state") for m in index if m["name"].startswith(f"vtp-{served['id']}-")}
    assert {name for name, state in mine.items() if state == "READY"} == {current}, mine
    folders = {p.name for p in triton.model_repository(stack.cfg).glob(f"vtp-{served['id']}-*")}
    assert folders == {current}
    assert admin.delete(f"/api/v1/deployments/{served['id']}").status_code == 204
