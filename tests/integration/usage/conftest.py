"""A deployment of the inference tests' ONNX export (fixtures shared, not copied), and helpers to read usage."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from vtp_localstack.stack import LocalStack

from ..inference.conftest import unique


def deploy(stack: LocalStack, admin_token: str, export_id: str, prefix: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as api:
        response = api.post("/api/v1/deployments", json={"export_id": export_id, "name": unique(prefix)})
    assert response.status_code == 201 and response.json()["status"] == "ready", response.text
    return dict(response.json())


def jpeg(size: tuple[int, int] = (80, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(out, "JPEG")
    return out.getvalue()


def wait_usage(
    api: httpx.Client, path: str, params: dict[str, str], done: Callable[[dict[str, Any]], bool], timeout: float = 90
) -> dict[str, Any]:
    """Poll a usage route until `done` (replicas flush every few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"usage never got there: {body['total']}"
        time.sleep(1.0)


@pytest.fixture(scope="package")
def usage_deployment(stack: LocalStack, admin_token: str, onnx_export: dict[str, Any]) -> dict[str, Any]:
    return deploy(stack, admin_token, onnx_export["id"], "usage")
