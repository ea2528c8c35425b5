"""Webhook subscriptions through the gateway, with real events on the broker and a local receiver.

The stack's notifier runs with fast retries (see TEST_SERVICE_LIMITS): 4 tries 0.2 s apart,
loopback allow-listed, disabled after 10 failed tries in a row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from vtp_contracts.catalog import JOB_LIFECYCLE
from vtp_contracts.events.jobs import JobLifecycle
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher

from .conftest import Project, epoch_event
from .webhook_receiver import Endpoint, Receiver

pytestmark = pytest.mark.integration
SUBS = "/api/v1/subscriptions"
TRIES = 4


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


def subscribe(api: httpx.Client, project: Project, endpoint: Endpoint, **body: Any) -> dict[str, Any]:
    response = api.post(SUBS, json={"url": endpoint.url, **body}, headers=project.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    endpoint.secret = created["secret"]
    return created


@pytest.fixture()
async def api(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.cfg.gateway_url, timeout=10) as client:
        yield client


async def asubscribe(api: httpx.AsyncClient, project: Project, endpoint: Endpoint, **body: Any) -> dict[str, Any]:
    response = await api.post(SUBS, json={"url": endpoint.url, **body}, headers=project.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    endpoint.secret = created["secret"]
    return created


async def deliveries(api: httpx.AsyncClient, project: Project, sub_id: str, **params: str) -> list[dict[str, Any]]:
    response = await api.get(f"{SUBS}/{sub_id}/deliveries", params=params, headers=project.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    """Await `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def lifecycle_event(project_id: uuid.UUID, job_id: uuid.UUID, status: str = "started") -> OutboundEvent:
    data = JobLifecycle(
        job_id=job_id, project_id=project_id, attempt=1, status=status, runner_id="r", occurred_at=datetime.now(UTC)
    )
    return make_event(JOB_LIFECYCLE, data, "trainer-runner")


def codes(response: httpx.Response) -> list[str]:
    return [e["code"] for e in response.json().get("errors", [])]


# -- the API ------------------------------------------------------------------------------------


def test_secret_is_shown_once_and_never_again(gateway: httpx.Client, project: Project, receiver: Receiver):
    created = subscribe(gateway, project, receiver.endpoint(), event_types=["epoch.progress.v1"], description="ci")
    assert created["secret"].startswith("whsec_") and created["active"] is True
    assert created["event_types"] == ["epoch.progress.v1"] and created["job_ids"] == []
    one = gateway.get(f"{SUBS}/{created['id']}", headers=project.headers)
    listed = gateway.get(SUBS, headers=project.headers).json()
    assert one.status_code == 200 and listed["total"] == 1
    for shown in (one.text, str(listed)):
        assert created["secret"] not in shown and "secret" not in shown
    assert {k: v for k, v in created.items() if k != "secret"} == one.json()


def test_bad_requests_report_every_problem_and_store_nothing(gateway: httpx.Client, project: Project):
    bad = {"url": "ftp://example.com/x", "event_types": ["epoch.progress.v1", "nope.v1"], "job_ids": ["x"], "y": 1}
    response = gateway.post(SUBS, json=bad, headers=project.headers)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert sorted(codes(response)) == ["extra_forbidden", "invalid_url", "unknown_event_type", "uuid_parsing"]
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert {"#/body/url", "#/body/event_types/1", "#/body/job_ids/0", "#/body/y"} <= pointers
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.1.2.3/hook", "http://[::ffff:10.0.0.1]/x"):
        refused = gateway.post(SUBS, json={"url": url}, headers=project.headers)
        assert refused.status_code == 422 and codes(refused) == ["target_not_allowed"], refused.text
    for body in ({"url": "https://user:pw@example.com/"}, {"url": "not a url"}, {}):
        assert gateway.post(SUBS, json=body, headers=project.headers).status_code == 422
    assert gateway.get(SUBS, headers=project.headers).json()["total"] == 0


def test_another_project_finds_nothing(
    gateway: httpx.Client, project: Project, other_project: Project, receiver: Receiver
):
    sub_id = subscribe(gateway, project, receiver.endpoint())["id"]
    as_other = other_project.headers
    calls = [
        ("GET", f"{SUBS}/{sub_id}", None),
        ("PATCH", f"{SUBS}/{sub_id}", {"description": "mine now"}),
        ("DELETE", f"{SUBS}/{sub_id}", None),
        ("POST", f"{SUBS}/{sub_id}/rotate-secret", None),
        ("GET", f"{SUBS}/{sub_id}/deliveries", None),
        ("GET", f"{SUBS}/{sub_id}/deliveries/{uuid.uuid4()}", None),
        ("POST", f"{SUBS}/{sub_id}/deliveries/{uuid.uuid4()}/redeliver", None),
    ]
    for method, path, body in calls:
        response = gateway.request(method, path, json=body, headers=as_other)
        assert response.status_code == 404 and response.json()["code"] == "subscription_not_found", (method, path)
    assert gateway.get(SUBS, headers=as_other).json()["total"] == 0
    assert gateway.get(f"{SUBS}/{sub_id}", headers=project.headers).json()["description"] is None


def test_patch_and_delete(gateway: httpx.Client, project: Project, receiver: Receiver):
    sub = subscribe(gateway, project, receiver.endpoint())
    path = f"{SUBS}/{sub['id']}"
    job = str(uuid.uuid4())
    changed = gateway.patch(
        path, json={"description": "d", "event_types": ["job.lifecycle.v1"], "job_ids": [job]}, headers=project.headers
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["event_types"], changed.json()["job_ids"]) == (
        "d",
        ["job.lifecycle.v1"],
        [job],
    )
    refused = gateway.patch(path, json={"url": None, "event_types": ["x.v1"]}, headers=project.headers)
    assert refused.status_code == 422 and sorted(codes(refused)) == ["null_not_allowed", "unknown_event_type"]
    not_a_boolean = gateway.patch(path, json={"active": "yes"}, headers=project.headers)
    assert not_a_boolean.status_code == 422 and codes(not_a_boolean) == ["bool_type"]
    private = gateway.patch(path, json={"url": "http://192.168.0.10/"}, headers=project.headers)
    assert codes(private) == ["target_not_allowed"]
    assert gateway.get(path, headers=project.headers).json()["url"] == sub["url"]
    missing = gateway.get(f"{path}/deliveries/{uuid.uuid4()}", headers=project.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "delivery_not_found"
    rotated = gateway.post(f"{path}/rotate-secret", headers=project.headers)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (sub["secret"], None)
    assert gateway.delete(path, headers=project.headers).status_code == 204
    assert gateway.get(path, headers=project.headers).json()["code"] == "subscription_not_found"
    assert gateway.delete(path, headers=project.headers).status_code == 404


# -- deliveries ---------------------------------------------------------------------------------


def ready(check: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """A synchronous check (the receiver's state) for :func:`eventually`."""

    async def run() -> Any:
        return check()

    return run


def having(api: httpx.AsyncClient, project: Project, sub_id: str, status: str) -> Callable[[], Awaitable[Any]]:
    """A check for :func:`eventually`: the subscription's deliveries in `status`, if any."""

    async def run() -> list[dict[str, Any]]:
        return await deliveries(api, project, sub_id, status=status)

    return run


async def test_events_are_delivered_signed_and_retried(
    api: httpx.AsyncClient, project: Project, receiver: Receiver, kafka: KafkaEventPublisher
):
    job, other_job = uuid.uuid4(), uuid.uuid4()
    picky_hook, all_hook = receiver.endpoint(fail_first=2), receiver.endpoint()
    picky = await asubscribe(api, project, picky_hook, event_types=["epoch.progress.v1"], job_ids=[str(job)])
    await asubscribe(api, project, all_hook)
    wanted = epoch_event(project.id, job, 1)
    await kafka.publish([wanted, epoch_event(project.id, other_job, 1), lifecycle_event(project.id, job)])

    await eventually(ready(lambda: len(all_hook.ok()) == 3), "the unfiltered subscription to get all three events")
    done = await eventually(having(api, project, picky["id"], "succeeded"), "the third try to succeed")
    assert [d["event_id"] for d in await deliveries(api, project, picky["id"])] == [wanted.id]  # filters held
    delivery = done[0]
    assert delivery["attempt_count"] == 3 and delivery["topic"] == "epoch.progress.v1"
    assert delivery["last_status_code"] == 200 and delivery["completed_at"] and delivery["dead_lettered_at"] is None
    attempts = delivery["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert all(a["latency_ms"] >= 0 and a["error"] is None for a in attempts)
    assert all(len(a["response_excerpt"].encode()) <= 1024 and '"status"' in a["response_excerpt"] for a in attempts)
    assert [r.verified for r in picky_hook.received] == [True, True, True]
    assert {r.webhook_id for r in picky_hook.received} == {wanted.id}  # stable across tries: receivers dedupe
    payload = picky_hook.received[-1].payload
    assert (payload["id"], payload["type"], payload["project_id"]) == (wanted.id, "epoch.progress.v1", str(project.id))
    assert payload["data"]["epoch"] == 1 and payload["data"]["job_id"] == str(job) and payload["timestamp"]
    one = await api.get(f"{SUBS}/{picky['id']}/deliveries/{delivery['id']}", headers=project.headers)
    assert one.json() == delivery


async def test_dead_letter_after_the_last_try_then_manual_redelivery(
    api: httpx.AsyncClient, project: Project, receiver: Receiver, kafka: KafkaEventPublisher
):
    hook = receiver.endpoint(always_fail=True, status_when_failing=503)
    sub = await asubscribe(api, project, hook)
    event = epoch_event(project.id, uuid.uuid4(), 7)
    await kafka.publish([event])
    dead = await eventually(having(api, project, sub["id"], "dead"), "the dead-letter record")
    assert len(dead) == 1 and dead[0]["attempt_count"] == TRIES and dead[0]["dead_lettered_at"]
    assert [a["status_code"] for a in dead[0]["attempts"]] == [503] * TRIES
    assert hook.count() == TRIES and all(r.verified for r in hook.received)
    still = await api.get(f"{SUBS}/{sub['id']}", headers=project.headers)
    assert still.json()["active"] is True  # 4 failures in a row, fewer than 10

    hook.always_fail = False
    again = await api.post(f"{SUBS}/{sub['id']}/deliveries/{dead[0]['id']}/redeliver", headers=project.headers)
    assert again.status_code == 202, again.text
    assert again.json()["redelivery_of"] == dead[0]["id"] and again.json()["attempt_count"] == 0
    redelivered = await eventually(having(api, project, sub["id"], "succeeded"), "the redelivery")
    assert redelivered[0]["id"] == again.json()["id"] and redelivered[0]["event_id"] == event.id
    assert hook.ok()[0].webhook_id == event.id and hook.ok()[0].body == hook.received[0].body
    assert len(await deliveries(api, project, sub["id"], status="dead")) == 1  # the record stays


async def test_a_run_of_failures_disables_the_subscription_until_enabled(
    api: httpx.AsyncClient, project: Project, receiver: Receiver, kafka: KafkaEventPublisher
):
    hook = receiver.endpoint(always_fail=True)
    sub = await asubscribe(api, project, hook)
    path = f"{SUBS}/{sub['id']}"
    await kafka.publish([epoch_event(project.id, uuid.uuid4(), n) for n in range(1, 6)])  # 20 tries > 10

    async def disabled() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.get(path, headers=project.headers)).json()
        return body if body["active"] is False else None

    state = await eventually(disabled, "auto-disabling")
    assert state["consecutive_failures"] >= 10 and "consecutive failed" in state["disabled_reason"]
    waiting = await eventually(having(api, project, sub["id"], "pending"), "deliveries waiting while disabled")
    assert all(d["attempt_count"] < TRIES for d in waiting)

    hook.always_fail = False
    enabled = (await api.patch(path, json={"active": True}, headers=project.headers)).json()
    assert enabled["active"] is True and enabled["consecutive_failures"] == 0 and enabled["disabled_reason"] is None

    async def all_done() -> bool:
        open_ = [d for d in await deliveries(api, project, sub["id"]) if d["status"] in ("pending", "delivering")]
        return not open_

    await eventually(all_done, "the waiting deliveries to go out once enabled")
    succeeded = await deliveries(api, project, sub["id"], status="succeeded")
    assert {d["id"] for d in waiting} <= {d["id"] for d in succeeded}
    assert (await api.get(path, headers=project.headers)).json()["consecutive_failures"] == 0


async def test_deleting_cancels_waiting_deliveries(
    stack: LocalStack, api: httpx.AsyncClient, project: Project, receiver: Receiver, kafka: KafkaEventPublisher
):
    hook = receiver.endpoint()
    sub = await asubscribe(api, project, hook)
    path = f"{SUBS}/{sub['id']}"
    paused = (await api.patch(path, json={"active": False}, headers=project.headers)).json()
    assert paused["active"] is False and paused["disabled_reason"]
    await kafka.publish([epoch_event(project.id, uuid.uuid4(), 1)])
    await eventually(having(api, project, sub["id"], "pending"), "a delivery held back")
    assert (await api.delete(path, headers=project.headers)).status_code == 204
    conn = await asyncpg.connect(stack.cfg.database_url("notifier").replace("postgresql+asyncpg", "postgresql"))
    try:
        query = "SELECT status FROM webhook_deliveries WHERE subscription_id = $1"
        rows = await conn.fetch(query, uuid.UUID(sub["id"]))
    finally:
        await conn.close()
    assert [r["status"] for r in rows] == ["cancelled"] and hook.count() == 0


async def test_a_delivery_in_progress_survives_a_notifier_crash(
    stack: LocalStack, api: httpx.AsyncClient, project: Project, receiver: Receiver, kafka: KafkaEventPublisher
):
    hook = receiver.endpoint(hold_first=True)
    sub = await asubscribe(api, project, hook)
    event = epoch_event(project.id, uuid.uuid4(), 3)
    await kafka.publish([event])
    await eventually(ready(lambda: hook.count() == 1), "the first try to reach the receiver")
    notifier = stack.table.find("notifier")
    assert notifier is not None
    os.killpg(notifier.pid, signal.SIGKILL)  # mid-try: nothing is recorded, the lease is all that is left
    await asyncio.to_thread(psutil.wait_procs, [notifier], 10)
    hook.release.set()
    await asyncio.to_thread(stack.up)

    done = await eventually(having(api, project, sub["id"], "succeeded"), "the delivery after the restart", 60)
    assert hook.count() == 2 and {r.webhook_id for r in hook.received} == {event.id}
    assert done[0]["attempt_count"] == 1 and [a["status_code"] for a in done[0]["attempts"]] == [200]
