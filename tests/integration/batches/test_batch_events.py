"""A batch's events reach the project's live feed through the notifier: requested, progress per
chunk, completed (message type `batch`); on Kafka they carry the trace of the request that submitted
the batch (the worker runs it in that trace)."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import connect

from vtp_localstack.stack import LocalStack

from .conftest import deploy

pytestmark = pytest.mark.integration


async def test_batch_progress_and_completion_are_on_the_feed(
    stack: LocalStack, admin_token: str, onnx_export: dict[str, Any], batch_zip: bytes
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-feed")
    url = stack.cfg.gateway_url.replace("http://", "ws://", 1) + "/api/v1/ws?types=batch"
    async with connect(url, additional_headers=headers, open_timeout=15) as ws:
        trace_id = secrets.token_hex(16)
        submit_headers = {**headers, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        async with httpx.AsyncClient(base_url=stack.cfg.gateway_url, headers=submit_headers, timeout=60) as api:
            response = await api.post(
                f"/api/v1/deployments/{deployment['id']}/batches", files={"file": ("images.zip", batch_zip)}
            )
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]
        mine: list[dict[str, Any]] = []
        async with asyncio.timeout(300):
            while not mine or "results_uri" not in mine[-1]:
                message = json.loads(await ws.recv())
                if message.get("type") == "batch" and message["data"]["batch_id"] == batch_id:
                    mine.append(message["data"])
    assert "attempt" in mine[0] and "status" not in mine[0]  # batch.requested.v1
    progress = [m for m in mine if m.get("status") == "running"]
    assert [m["chunks_done"] for m in progress] == [1, 2, 3, 4, 5]
    assert progress[-1]["processed_images"] == 20
    assert mine[-1]["status"] == "succeeded" and mine[-1]["results_uri"].endswith("results.jsonl")
    assert mine[-1]["coco_uri"].endswith("coco.json")
    assert await _trace_ids(stack, batch_id) == {trace_id}  # every progress and the completed event


async def _trace_ids(stack: LocalStack, batch_id: str) -> set[str]:
    """The trace ids in the `traceparent` of the batch's progress and completed events on Kafka."""
    consumer = AIOKafkaConsumer(
        "batch.progress.v1",
        "batch.completed.v1",
        bootstrap_servers=stack.cfg.kafka_bootstrap,
        group_id=f"t-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while fetched := await consumer.getmany(timeout_ms=3000, max_records=100000):  # to the end of both
            records += [r for rs in fetched.values() for r in rs if json.loads(r.value)["batch_id"] == batch_id]
    finally:
        await consumer.stop()
    assert {r.topic for r in records} == {"batch.progress.v1", "batch.completed.v1"}, records
    return {dict(r.headers)["traceparent"].decode().split("-")[1] for r in records}
