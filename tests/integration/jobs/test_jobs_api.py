"""The jobs service through the gateway, with runner events simulated on the real broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from vtp_contracts.base import ObjectRef
from vtp_contracts.catalog import CHECKPOINT_SAVED, EPOCH_PROGRESS, JOB_HEARTBEAT, JOB_LIFECYCLE
from vtp_contracts.events.jobs import CheckpointSaved, EpochProgress, JobHeartbeat, JobLifecycle
from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher

from ..datasets.conftest import upload

pytestmark = pytest.mark.integration
SHA = "ab" * 32


@pytest.fixture(scope="module", autouse=True)
def no_real_runner(stack: LocalStack) -> Iterator[None]:
    """These tests play the runner themselves, so the stack's real runner sits them out.

    Afterwards the runners' consumer group is moved past the commands these tests queued, so the
    real runner does not train them when it comes back.
    """
    stack.table.stop("trainer-runner")
    try:
        yield
    finally:
        asyncio.run(_skip_queued_commands(stack))
        stack.up()


async def _skip_queued_commands(stack: LocalStack) -> None:
    consumer = AIOKafkaConsumer(
        "job.requested.v1",
        bootstrap_servers=stack.cfg.kafka_bootstrap,
        group_id="trainer-runners",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)
        await consumer.seek_to_end()
        for partition in consumer.assignment():
            await consumer.position(partition)
        await consumer.commit()
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
def dataset_id(stack: LocalStack, admin_token: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("jobs-data")
    data = zip_dataset(generate(root / "d", images=12, seed=5), root / "d.zip").read_bytes()
    with httpx.Client(base_url=stack.cfg.gateway_url, headers={"Authorization": f"Bearer {admin_token}"}) as api:
        response = upload(api, data, f"jobs-{uuid.uuid4().hex[:6]}")
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def _submit(admin: httpx.Client, dataset: str, **overrides: object) -> httpx.Response:
    body = {
        "name": "shapes",
        "framework": "ultralytics",
        "task_type": "detect",
        "model": "yolo11n",
        "dataset_id": dataset,
        "config": {"epochs": 3, "imgsz": 64, "batch": 4},
    } | overrides
    return admin.post("/api/v1/jobs", json=body)


def _publish(stack: LocalStack, *events: OutboundEvent) -> None:
    async def send() -> None:
        publisher = KafkaEventPublisher(stack.cfg.kafka_bootstrap)
        await publisher.start()
        try:
            await publisher.publish(list(events))
        finally:
            await publisher.stop()

    asyncio.run(send())


def _runner(job: dict, attempt: int = 1) -> dict:
    return {"job_id": job["id"], "project_id": _project(job), "attempt": attempt}


def _project(job: dict) -> str:
    return job["_project"]


def _wait(admin: httpx.Client, job_id: str, predicate, timeout: float = 60) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        job = admin.get(f"/api/v1/jobs/{job_id}").json()
        if predicate(job):
            return job
        assert time.monotonic() < deadline, f"job never reached the expected state: {job}"
        time.sleep(0.2)


@pytest.fixture()
def job(admin: httpx.Client, dataset_id: str) -> dict:
    response = _submit(admin, dataset_id)
    assert response.status_code == 201, response.text
    body = response.json()
    body["_project"] = admin.get("/api/v1/auth/whoami").json()["project_id"]
    return body


def test_submit_pins_a_snapshot_and_queues(job: dict):
    assert job["status"] == "queued" and job["attempt"] == 1 and job["snapshot_id"]


def test_invalid_requests_report_every_problem(admin: httpx.Client, dataset_id: str):
    response = _submit(
        admin, dataset_id, model="yolo99z", config={"epochs": 0, "imgsz": 100}, advanced_config={"warp_drive": 1}
    )
    assert response.status_code == 422, response.text
    codes = {e["pointer"]: e["code"] for e in response.json()["errors"]}
    assert codes["#/body/model"] == "unknown_model"
    assert codes["#/body/config/imgsz"] == "imgsz_not_multiple_of_32"
    assert codes["#/body/advanced_config/warp_drive"] == "unknown_advanced_key"
    assert "#/body/config/epochs" in codes


def test_numbers_and_booleans_are_not_coerced(admin: httpx.Client, dataset_id: str, job: dict):
    # The document says integer/number/boolean: `true` or "5" is refused, not turned into 1 or 5.
    split = {"method": "auto", "train": True, "val": 0.2, "seed": "5"}
    response = _submit(admin, dataset_id, priority="5", split=split)
    assert response.status_code == 422, response.text
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert {"#/body/priority", "#/body/split/train", "#/body/split/seed"} <= pointers
    restart = admin.post(f"/api/v1/jobs/{job['id']}/restart", json={"resume": "no"})
    assert restart.status_code == 422 and restart.json()["errors"][0]["pointer"] == "#/body/resume"


@pytest.mark.parametrize(
    "overrides,pointer,code",
    [
        ({"task_type": "pose"}, "#/body/task_type", "dataset_lacks_task"),
        ({"dataset_id": str(uuid.uuid4())}, "#/body/dataset_id", "dataset_not_found"),
        ({"snapshot_id": str(uuid.uuid4())}, "#/body/snapshot_id", "snapshot_not_found"),
        ({"task_type": "track"}, "#/body/task_type", "task_not_supported"),
    ],
)
def test_dataset_and_task_problems(admin: httpx.Client, dataset_id: str, overrides: dict, pointer: str, code: str):
    response = _submit(admin, dataset_id, **overrides)
    assert response.status_code == 422, response.text
    assert {(e["pointer"], e["code"]) for e in response.json()["errors"]} >= {(pointer, code)}


def test_other_project_gets_404(admin: httpx.Client, gateway: httpx.Client, job: dict):
    project = admin.post("/api/v1/projects", json={"name": f"p {uuid.uuid4().hex[:6]}"}).json()
    token = admin.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "t"}).json()["token"]
    other = {"Authorization": f"Bearer {token}"}
    assert gateway.get(f"/api/v1/jobs/{job['id']}", headers=other).status_code == 404
    assert gateway.post(f"/api/v1/jobs/{job['id']}/cancel", headers=other).status_code == 404
    assert gateway.get(f"/api/v1/jobs/{job['id']}/metrics", headers=other).status_code == 404


def test_runner_events_drive_the_job_once_each(stack: LocalStack, admin: httpx.Client, job: dict):
    now = datetime.now(UTC)
    ids = _runner(job)
    progress = [
        make_event(
            EPOCH_PROGRESS,
            EpochProgress(
                **ids, epoch=e, total_epochs=3, val_metrics={"mAP50": e / 10}, train_losses={"box_loss": 1 / e}
            ),
            "trainer-runner",
        )
        for e in (1, 2, 3)
    ]
    best = CheckpointSaved(
        **ids,
        kind="best",
        epoch=3,
        checkpoint=ObjectRef(uri="s3://vtp/ckpt/best.pt", sha256=SHA, size_bytes=10),
        metrics={"mAP50": 0.3},
    )
    events = [
        make_event(
            JOB_LIFECYCLE, JobLifecycle(**ids, status="started", runner_id="r1", occurred_at=now), "trainer-runner"
        ),
        progress[0],
        progress[1],
        progress[1],  # a redelivery of the same event id
        make_event(
            EPOCH_PROGRESS, EpochProgress(**ids, epoch=2, total_epochs=3), "trainer-runner"
        ),  # same epoch, new id
        progress[2],
        make_event(CHECKPOINT_SAVED, best, "trainer-runner"),
        make_event(
            JOB_LIFECYCLE, JobLifecycle(**ids, status="completed", runner_id="r1", occurred_at=now), "trainer-runner"
        ),
    ]
    _publish(stack, *events)
    # Each topic is consumed on its own: wait until all of them have been applied.
    done = _wait(admin, job["id"], lambda j: j["status"] == "completed" and j["epoch"] == 3 and j["best_epoch"])
    assert done["epoch"] == 3 and done["best_epoch"] == 3 and done["best_metrics"] == {"mAP50": 0.3}
    assert done["runner_id"] == "r1" and done["checkpoints"]["best"]["uri"] == "s3://vtp/ckpt/best.pt"
    metrics = admin.get(f"/api/v1/jobs/{job['id']}/metrics").json()
    assert [[e["epoch"] for e in a["epochs"]] for a in metrics["attempts"]] == [[1, 2, 3]]
    restarted = admin.post(f"/api/v1/jobs/{job['id']}/restart", json={"resume": False})
    assert restarted.status_code == 202 and restarted.json()["attempt"] == 2 and restarted.json()["status"] == "queued"


def test_silent_runner_is_requeued_and_fenced_off(stack: LocalStack, admin: httpx.Client, job: dict):
    now = datetime.now(UTC)
    ids = _runner(job)
    last = CheckpointSaved(
        **ids, kind="last", epoch=1, checkpoint=ObjectRef(uri="s3://vtp/ckpt/last.pt", sha256=SHA, size_bytes=10)
    )
    _publish(
        stack,
        make_event(
            JOB_LIFECYCLE, JobLifecycle(**ids, status="started", runner_id="r1", occurred_at=now), "trainer-runner"
        ),
        make_event(JOB_HEARTBEAT, JobHeartbeat(**ids, runner_id="r1", sent_at=now), "trainer-runner"),
        make_event(EPOCH_PROGRESS, EpochProgress(**ids, epoch=1, total_epochs=3), "trainer-runner"),
        make_event(CHECKPOINT_SAVED, last, "trainer-runner"),
    )
    requeued = _wait(admin, job["id"], lambda j: j["attempt"] == 2, timeout=30)
    assert requeued["status"] == "queued"
    command = _find_request(stack, job["id"], attempt=2)
    assert command["resume_from"] == {"uri": "s3://vtp/ckpt/last.pt", "sha256": SHA, "epoch": 1}
    _publish(stack, make_event(EPOCH_PROGRESS, EpochProgress(**ids, epoch=2, total_epochs=3), "trainer-runner"))
    time.sleep(1.5)
    metrics = admin.get(f"/api/v1/jobs/{job['id']}/metrics").json()
    assert [[e["epoch"] for e in a["epochs"]] for a in metrics["attempts"]] == [[1]], "the lost runner is fenced off"


def _find_request(stack: LocalStack, job_id: str, attempt: int) -> dict:
    async def find() -> dict:
        consumer = AIOKafkaConsumer(
            "job.requested.v1",
            bootstrap_servers=stack.cfg.kafka_bootstrap,
            group_id=f"t-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            async with asyncio.timeout(20):
                while True:
                    data = json.loads((await consumer.getone()).value)
                    if data["job_id"] == job_id and data["attempt"] == attempt:
                        return data
        finally:
            await consumer.stop()

    return asyncio.run(find())


def test_cancel_of_a_queued_job_ends_it_at_once(admin: httpx.Client, job: dict):
    response = admin.post(f"/api/v1/jobs/{job['id']}/cancel", json={"reason": "changed my mind"})
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    again = admin.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "job_finished"


def test_trainers_and_config_schema(admin: httpx.Client):
    trainers = admin.get("/api/v1/trainers").json()
    assert trainers[0]["name"] == "ultralytics"
    schema = admin.get("/api/v1/trainers/ultralytics/config-schema")
    assert schema.status_code == 200 and set(schema.json()["presets"]) >= {"easy", "medium", "advanced"}
    assert admin.get("/api/v1/trainers/keras/config-schema").status_code == 404
