"""Two notifier replicas: a client on either one gets every event of its subscription."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.notifier.conftest import Project, collect, epoch_event, epochs, next_message, open_feed
from vtp_localstack.ports import free_port
from vtp_localstack.processes import wait_until
from vtp_localstack.services import service_spec
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.kafka import KafkaEventPublisher

pytestmark = pytest.mark.integration


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture()
def second_replica(stack: LocalStack) -> Iterator[str]:
    """Another notifier process on the same database, broker and Redis, on its own port."""
    port = free_port()
    spec = service_spec(stack.cfg, "notifier")
    spec = dataclasses.replace(spec, name="notifier-replica-2", port=port, env={**spec.env, "VTP_HTTP_PORT": str(port)})
    stack.table.start(spec)
    url = f"http://{stack.cfg.host}:{port}"
    try:
        wait_until(lambda: _healthy(f"{url}/health"), 60, spec.name)
        yield url
    finally:
        stack.table.stop(spec.name)


async def test_clients_on_two_replicas_receive_the_same_events(
    stack: LocalStack, project: Project, second_replica: str, kafka: KafkaEventPublisher
) -> None:
    job_id = uuid.uuid4()
    first_replica = stack.cfg.service_url("notifier")
    async with (
        open_feed(first_replica, project.headers, jobs=str(job_id), types="progress") as one,
        open_feed(second_replica, project.headers, jobs=str(job_id), types="progress") as two,
    ):
        assert (await next_message(one))["type"] == (await next_message(two))["type"] == "subscribed"
        for epoch in range(1, 21):
            await kafka.publish([epoch_event(project.id, job_id, epoch)])
        got_one, got_two = await asyncio.gather(collect(one, 20, "progress"), collect(two, 20, "progress"))
    assert epochs(got_one) == epochs(got_two) == list(range(1, 21))
    assert [m["event_id"] for m in got_one] == [m["event_id"] for m in got_two]
