"""API keys and rate limits: two inference replicas behind the gateway, a deployment, helpers.

The session's stack runs one inference replica (other packages' tests expect one: per-replica
metrics, start-up costs); this package adds a second one to it for all its tests (`VTP_REPLICAS`-style,
through `StackConfig.replicas`), so the gateway load-balances both, and removes it afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from vtp_localstack.stack import LocalStack

from ..inference.conftest import unique

INFERENCE = "inference"


@pytest.fixture(scope="package", autouse=True)
def replicas(stack: LocalStack) -> Iterator[list[str]]:
    """The base URLs of both inference replicas (the gateway balances them round robin)."""
    cfg = stack.cfg.model_copy(update={"replicas": {**stack.cfg.replicas, INFERENCE: 2}})
    scaled = LocalStack(cfg)
    scaled.up()  # starts `inference-2`, re-renders Caddy with both upstreams
    try:
        yield [f"http://{cfg.host}:{port}" for port in cfg.replica_ports(INFERENCE)]
    finally:
        scaled.table.stop(f"{INFERENCE}-2")
        stack.up()  # back to one upstream


@pytest.fixture(scope="package")
def deployment(stack: LocalStack, admin_token: str, onnx_export: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as api:
        response = api.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("access")})
    assert response.status_code == 201 and response.json()["status"] == "ready", response.text
    return dict(response.json())


def jpeg(size: tuple[int, int] = (80, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(out, "JPEG")
    return out.getvalue()


def predict(client: httpx.Client, deployment_id: str, headers: dict[str, str], images: int = 1) -> httpx.Response:
    files = [("file", (f"{i}.jpg", jpeg(), "image/jpeg")) for i in range(images)]
    return client.post(f"/api/v1/deployments/{deployment_id}/predict", files=files, headers=headers)


def infer_body(imgsz: int) -> dict[str, Any]:
    """An Open Inference Protocol JSON request of one blank image tensor."""
    shape = [1, 3, imgsz, imgsz]
    return {"inputs": [{"name": "images", "datatype": "FP32", "shape": shape, "data": [0.5] * (3 * imgsz * imgsz)}]}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def create_key(api: httpx.Client, path: str, **body: Any) -> dict[str, Any]:
    response = api.post(path, json={"name": unique("key"), **body})
    assert response.status_code == 201, response.text
    return dict(response.json())
