"""Helpers of the notifier tests: projects with tokens, events on the real broker, socket clients."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from vtp_contracts.catalog import EPOCH_PROGRESS
from vtp_contracts.events.jobs import EpochProgress
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher


@dataclass(frozen=True)
class Project:
    id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_project(admin: httpx.Client) -> Project:
    project = admin.post("/api/v1/projects", json={"name": f"feed {uuid.uuid4().hex[:6]}"}).json()
    token = admin.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "t"}).json()["token"]
    return Project(uuid.UUID(project["id"]), token)


@pytest.fixture()
def project(admin: httpx.Client) -> Project:
    return new_project(admin)


@pytest.fixture()
def other_project(admin: httpx.Client) -> Project:
    return new_project(admin)


def epoch_event(project_id: uuid.UUID, job_id: uuid.UUID, epoch: int, total: int = 100) -> OutboundEvent:
    data = EpochProgress(
        job_id=job_id,
        project_id=project_id,
        attempt=1,
        epoch=epoch,
        total_epochs=total,
        val_metrics={"mAP50": epoch / total},
        epoch_seconds=0.1,
    )
    return make_event(EPOCH_PROGRESS, data, "trainer-runner")


@pytest.fixture()
async def kafka(stack: LocalStack) -> AsyncIterator[KafkaEventPublisher]:
    publisher = KafkaEventPublisher(stack.cfg.kafka_bootstrap)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


def ws_url(base_http_url: str, **query: str) -> str:
    url = base_http_url.replace("http://", "ws://", 1) + "/api/v1/ws"
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def open_feed(base_http_url: str, headers: dict[str, str] | None = None, **query: str) -> Any:
    """A websockets client connection (use with `async with`)."""
    return connect(ws_url(base_http_url, **query), additional_headers=headers or {}, open_timeout=15)


async def next_message(ws: ClientConnection, timeout: float = 20.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def collect(
    ws: ClientConnection, count: int, kind: str | None = None, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The next `count` feed messages (of type `kind` if given), skipping control messages."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            message = await next_message(ws, timeout)
            if "event_id" in message and (kind is None or message["type"] == kind):
                out.append(message)
    return out


def epochs(messages: Sequence[dict[str, Any]]) -> list[int]:
    return [m["data"]["epoch"] for m in messages]
