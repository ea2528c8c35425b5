"""The live feed through the gateway: history then live with no gap, resume with `since`, isolation."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.integration.notifier.conftest import Project, collect, epoch_event, epochs, next_message, open_feed
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.kafka import KafkaEventPublisher

pytestmark = pytest.mark.integration
TOTAL = 40


async def _publish_slowly(
    kafka: KafkaEventPublisher, project: Project, job_id: uuid.UUID, first: int, last: int
) -> None:
    for epoch in range(first, last + 1):
        await kafka.publish([epoch_event(project.id, job_id, epoch, TOTAL)])
        await asyncio.sleep(0.05)


async def test_reconnect_with_since_gets_every_event_once_in_order(
    stack: LocalStack, project: Project, kafka: KafkaEventPublisher
) -> None:
    job_id = uuid.uuid4()
    gateway = stack.cfg.gateway_url
    await kafka.publish([epoch_event(project.id, job_id, e, TOTAL) for e in range(1, 6)])  # history before anyone looks

    received: list[dict] = []
    async with open_feed(gateway, project.headers, jobs=str(job_id), types="progress") as ws:
        ack = await next_message(ws)
        assert ack["type"] == "subscribed" and ack["jobs"] == [str(job_id)]
        producer = asyncio.create_task(_publish_slowly(kafka, project, job_id, 6, TOTAL))
        received += await collect(ws, 15, "progress")  # history 1-5, then live while more are published
    # Dropped mid-stream: the producer keeps going while nobody is connected.
    await asyncio.sleep(0.5)
    async with open_feed(
        gateway, project.headers, jobs=str(job_id), types="progress", since=received[-1]["event_id"]
    ) as ws:
        received += await collect(ws, TOTAL - 15, "progress")
        await producer
        with pytest.raises(TimeoutError):  # and nothing more: no duplicate after the seam
            await collect(ws, 1, "progress", timeout=1.5)

    assert epochs(received) == list(range(1, TOTAL + 1))
    assert len({m["event_id"] for m in received}) == TOTAL
    first = received[0]
    assert first["subject"] == str(job_id) and first["data"]["total_epochs"] == TOTAL and "time" in first


async def test_epoch_is_progress_and_metrics_and_types_filter(
    stack: LocalStack, project: Project, kafka: KafkaEventPublisher
) -> None:
    job_id = uuid.uuid4()
    async with open_feed(stack.cfg.gateway_url, project.headers, jobs=str(job_id)) as ws:
        assert (await next_message(ws))["type"] == "subscribed"
        await kafka.publish([epoch_event(project.id, job_id, 1)])
        progress, metrics = await collect(ws, 2)
    assert (progress["type"], metrics["type"]) == ("progress", "metrics")
    assert progress["event_id"] == metrics["event_id"]
    assert metrics["data"]["val_metrics"] == {"mAP50": 0.01} and "val_metrics" not in progress["data"]


async def test_a_client_never_sees_another_projects_events(
    stack: LocalStack, project: Project, other_project: Project, kafka: KafkaEventPublisher
) -> None:
    job_id = uuid.uuid4()
    await kafka.publish([epoch_event(project.id, job_id, 1)])
    gateway = stack.cfg.gateway_url
    async with open_feed(gateway, project.headers, jobs=str(job_id), types="progress") as mine:
        assert (await next_message(mine))["type"] == "subscribed"  # epoch 1 comes as history or live
        theirs_event = (await collect(mine, 1))[0]["event_id"]
        async with (
            open_feed(gateway, other_project.headers, jobs=str(job_id)) as by_job,
            open_feed(gateway, other_project.headers, project="true") as whole_project,
            open_feed(gateway, other_project.headers, since=theirs_event) as resuming,
        ):
            assert (await next_message(by_job))["history"] == 0
            assert (await next_message(whole_project))["type"] == "subscribed"
            problem = await next_message(resuming)
            assert problem["type"] == "problem" and problem["code"] == "unknown_since"
            await kafka.publish([epoch_event(project.id, job_id, 2), epoch_event(other_project.id, uuid.uuid4(), 7)])
            assert epochs(await collect(mine, 1, "progress")) == [2]
            own = await collect(whole_project, 2)  # progress + metrics of its own event only
            assert {m["data"]["epoch"] for m in own} == {7}
            with pytest.raises(TimeoutError):
                await collect(by_job, 1, timeout=1.5)


async def test_ticket_opens_the_feed_once_and_anonymous_sockets_are_refused(
    stack: LocalStack, project: Project
) -> None:
    base = stack.cfg.gateway_url
    async with httpx.AsyncClient(base_url=base) as http:
        ticket = (await http.post("/api/v1/ws/tickets", headers=project.headers)).json()
        assert (await http.post("/api/v1/ws/tickets")).status_code == 401
    assert ticket["ticket"].startswith("wst_") and 0 < ticket["expires_in"] <= 60
    async with open_feed(base, ticket=ticket["ticket"], project="true") as ws:
        assert (await next_message(ws))["type"] == "subscribed"
        await ws.send('{"action": "ping"}')
        assert (await next_message(ws))["type"] == "pong"
    for attempt in ({"ticket": ticket["ticket"]}, {}, {"ticket": "wst_forged"}):  # used, none, forged
        with pytest.raises(InvalidStatus) as refused:
            async with open_feed(base, **attempt):
                pass
        assert refused.value.response.status_code == 403


async def test_bad_subscription_reports_every_problem_and_keeps_the_socket(stack: LocalStack, project: Project) -> None:
    async with open_feed(stack.cfg.gateway_url, project.headers) as ws:
        await ws.send('{"action": "subscribe", "jobs": ["not-a-uuid"], "types": ["progress", "gossip"]}')
        problem = await next_message(ws)
        assert problem["code"] == "invalid_subscription"
        assert {e["field"] for e in problem["errors"]} == {"jobs.0", "types.1"}
        await ws.send("not json")
        assert (await next_message(ws))["code"] == "invalid_message"
        await ws.send('{"action": "subscribe", "project": true}')
        assert (await next_message(ws))["type"] == "subscribed"


async def test_subscribing_again_to_the_same_job_is_idempotent(
    stack: LocalStack, project: Project, kafka: KafkaEventPublisher
) -> None:
    job_id = uuid.uuid4()
    await kafka.publish([epoch_event(project.id, job_id, e, TOTAL) for e in range(1, 4)])
    async with open_feed(stack.cfg.gateway_url, project.headers, jobs=str(job_id), types="progress") as ws:
        assert (await next_message(ws))["type"] == "subscribed"
        received = await collect(ws, 3, "progress")  # epochs 1-3, as history or live
        await kafka.publish([epoch_event(project.id, job_id, 4, TOTAL)])
        received += await collect(ws, 1, "progress")
        # The same job again, by message: nothing the socket already has comes twice.
        await ws.send(json.dumps({"action": "subscribe", "jobs": [str(job_id)], "types": ["progress"]}))
        ack = await next_message(ws)
        assert ack["type"] == "subscribed" and ack["history"] == 0
        await kafka.publish([epoch_event(project.id, job_id, 5, TOTAL)])
        received += await collect(ws, 1, "progress")
        # Widening the types sends only the new type's messages of what it already had.
        await ws.send(json.dumps({"action": "subscribe", "jobs": [str(job_id)], "types": ["progress", "metrics"]}))
        ack = await next_message(ws)
        assert ack["history"] == 5
        metrics = await collect(ws, 5)
        assert {m["type"] for m in metrics} == {"metrics"} and epochs(metrics) == [1, 2, 3, 4, 5]
        await kafka.publish([epoch_event(project.id, job_id, 6, TOTAL)])
        received += [m for m in await collect(ws, 2) if m["type"] == "progress"]
        with pytest.raises(TimeoutError):  # and nothing more
            await collect(ws, 1, timeout=1.5)
    assert sorted(epochs(received)) == list(range(1, 7))
