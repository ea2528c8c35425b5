"""A batch's events reach the project's live feed through the notifier: requested, progress per
chunk, completed (message type `batch`); on Kafka they carry the trace of the request that submitted
the batch (the worker runs it in that trace)."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from vtp_localstack.stack import LocalStack

from .conftest import batch_events, deploy

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
    topics = ["batch.requested.v1", "batch.progress.v1", "batch.completed.v1"]
    wanted = dict(zip(topics, (1, 5, 1), strict=True))  # the command, a progress per chunk, the end
    events = await batch_events(
        stack, batch_id, topics, lambda found: all([t for t, _, _ in found].count(t) >= n for t, n in wanted.items())
    )
    assert {trace for _, _, trace in events} == {trace_id}  # the command, every progress, the completed event
