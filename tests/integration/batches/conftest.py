"""Batches: the inference tests' ONNX export (fixtures shared, not copied), a zip of generated images."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from vtp_dice.sample import generate
from vtp_localstack.stack import LocalStack

from ..inference.conftest import unique


def deploy(stack: LocalStack, admin_token: str, export_id: str, prefix: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as api:
        response = api.post("/api/v1/deployments", json={"export_id": export_id, "name": unique(prefix)})
    assert response.status_code == 201 and response.json()["status"] == "ready", response.text
    return dict(response.json())


@pytest.fixture(scope="package")
def images(tmp_path_factory: Any) -> dict[str, bytes]:
    """20 images like the training data (so the model finds objects), by file name."""
    root = tmp_path_factory.mktemp("batch-images")
    dataset = generate(root / "d", images=20, size=(96, 96), seed=23, tasks=("detection",), background_fraction=0.0)
    return {p.name: p.read_bytes() for p in sorted(dataset.rglob("*.jpg"))[:20]}


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


@pytest.fixture(scope="package")
def batch_zip(images: dict[str, bytes]) -> bytes:
    return zip_of({f"photos/{name}": data for name, data in images.items()})


def submit(
    api: httpx.Client, deployment_id: str, data: bytes, *, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    path = f"/api/v1/deployments/{deployment_id}/batches"
    return api.post(path, files={"file": ("images.zip", data)}, data=params, headers=headers)


Traced = tuple[str, dict[str, Any], str]  # topic, event data, trace id of its `traceparent`


async def batch_events(
    stack: LocalStack, batch_id: str, topics: list[str], until: Callable[[list[Traced]], bool], timeout: float = 60
) -> list[Traced]:
    """The batch's events on `topics` on Kafka, read from the start until `until` holds for them."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=stack.cfg.kafka_bootstrap,
        group_id=f"t-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[Traced] = []
    try:
        async with asyncio.timeout(timeout):  # the outbox relay may publish the last ones a little later
            while not until(found):
                fetched = await consumer.getmany(timeout_ms=1000, max_records=100000)
                for record in (r for rs in fetched.values() for r in rs):
                    data = json.loads(record.value)
                    if data["batch_id"] == batch_id:
                        found.append((record.topic, data, dict(record.headers)["traceparent"].decode().split("-")[1]))
    finally:
        await consumer.stop()
    return found


def wait_batch(
    api: httpx.Client, path: str, done: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 300
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(path)
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        if done(batch) if done else batch["status"] in ("succeeded", "failed", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"the batch never got there: {batch}"
        time.sleep(0.5)


def rows_of(api: httpx.Client, path: str) -> list[dict[str, Any]]:
    response = api.get(f"{path}/results")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line]


def predicted(api: httpx.Client, deployment_id: str, name: str, data: bytes, **params: Any) -> dict[str, Any]:
    """The predict API's answer for one image."""
    response = api.post(f"/api/v1/deployments/{deployment_id}/predict", files=[("file", (name, data))], data=params)
    assert response.status_code == 200, response.text
    return dict(response.json()["images"][0])


def same_detections(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x["class_id"] != y["class_id"] or abs(x["confidence"] - y["confidence"]) > 1e-5:
            return False
        if any(abs(p - q) > 1e-3 for p, q in zip(x["xyxy"], y["xyxy"], strict=True)):
            return False
    return True
