"""Shared set-up of the access benches: a local stack on free ports with N inference replicas behind the
gateway, a short detect job exported to ONNX and deployed, and helpers to send predicts."""

from __future__ import annotations

import contextlib
import io
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import platform_steps as steps
from PIL import Image

SERVICES = ("identity", "datasets", "jobs", "trainer-runner", "export", "inference")


@dataclass
class Setup:
    gateway: str
    token: str
    deployment: dict[str, Any]
    replicas: list[str]
    redis_url: str


def _deploy(api: httpx.Client, root: Path) -> dict[str, Any]:
    job = steps.train_detect(api, root, images=24, size=(96, 96), seed=7, epochs=1, imgsz=64, batch=8)
    final = steps.export(api, job["id"], "onnx")
    if final["status"] != "succeeded":
        raise RuntimeError(f"export failed: {final['error']}")
    return steps.deploy(api, final["id"], f"bench-{uuid.uuid4().hex[:6]}")


@contextlib.contextmanager
def access_stack(replicas: int) -> Iterator[Setup]:
    """A fresh stack with `replicas` inference processes and one deployment; torn down afterwards."""
    from vtp_localstack.ports import isolated_config
    from vtp_localstack.stack import LocalStack

    with tempfile.TemporaryDirectory(prefix="vtp-access-bench-") as tmp:
        root = Path(tmp)
        cfg = isolated_config(root / "run", replicas={"inference": replicas})
        stack = LocalStack(cfg)
        try:
            print(f"starting a local stack with {replicas} inference replica(s) ...", flush=True)
            stack.up(services=SERVICES)
            token = (cfg.run_path / "admin-token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=cfg.gateway_url, headers=headers, timeout=120) as api:
                print("training, exporting and deploying a small detect model ...", flush=True)
                deployment = _deploy(api, root)
            urls = [f"http://{cfg.host}:{port}" for port in cfg.replica_ports("inference")]
            yield Setup(cfg.gateway_url, token, deployment, urls, cfg.redis_url)
        finally:
            stack.down()


def jpeg(size: tuple[int, int] = (96, 72)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(out, "JPEG")
    return out.getvalue()


def new_key(setup: Setup, limits: dict[str, int]) -> str:
    headers = {"Authorization": f"Bearer {setup.token}"}
    path = f"{setup.gateway}/api/v1/deployments/{setup.deployment['id']}/keys"
    response = httpx.post(path, json={"name": "bench", "limits": limits}, headers=headers, timeout=60)
    response.raise_for_status()
    return str(response.json()["secret"])


def predict(client: httpx.Client, deployment_id: str, credential: str, image: bytes) -> int:
    return send(client, deployment_id, credential, image).status_code


def send(client: httpx.Client, deployment_id: str, credential: str, image: bytes) -> httpx.Response:
    files = {"file": ("i.jpg", image, "image/jpeg")}
    headers = {"Authorization": f"Bearer {credential}"}
    return client.post(f"/api/v1/deployments/{deployment_id}/predict", files=files, headers=headers)
