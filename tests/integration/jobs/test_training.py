"""Real training through the platform: runners in a consumer group, crash recovery, cancellation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.ports import free_port
from vtp_localstack.processes import ProcessSpec
from vtp_localstack.services import service_spec
from vtp_localstack.stack import LocalStack

from ..datasets.conftest import upload

pytestmark = pytest.mark.integration
CONFIG = {"epochs": 2, "imgsz": 64, "batch": 8, "workers": 0, "seed": 0}
# Jobs a test interrupts: long enough that the runner is still training when the signal lands (at
# 4 epochs a job once finished, in 7 s, before the test's SIGTERM reached its runner).
LONG = 12


@pytest.fixture(scope="module")
def dataset_id(stack: LocalStack, admin_token: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("train-data")
    data = zip_dataset(generate(root / "d", images=24, size=(96, 96), seed=7), root / "d.zip").read_bytes()
    with httpx.Client(base_url=stack.cfg.gateway_url, headers={"Authorization": f"Bearer {admin_token}"}) as api:
        response = upload(api, data, f"train-{uuid.uuid4().hex[:6]}")
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture(scope="module")
def second_runner(stack: LocalStack) -> Iterator[str]:
    """Another runner process in the same consumer group (its own port, id and work dir)."""
    base = service_spec(stack.cfg, "trainer-runner")
    runner_id = f"runner-b-{uuid.uuid4().hex[:4]}"
    env = {
        **base.env,
        "VTP_HTTP_PORT": str(free_port()),
        "VTP_RUNNER_ID": runner_id,
        "VTP_WORK_DIR": str(stack.cfg.run_path / "data" / "runner-b"),
    }
    spec = ProcessSpec("trainer-runner-b", base.argv, env, cwd=base.cwd)
    stack.table.start(spec)
    try:
        yield runner_id
    finally:
        stack.table.stop("trainer-runner-b")


@pytest.fixture(autouse=True)
def _restore_runners(stack: LocalStack, second_runner: str) -> Iterator[None]:
    """Tests kill runners on purpose; whatever happens, the next test finds both running again."""
    yield
    if stack.table.find("trainer-runner-b") is None:
        stack.table.start(second_runner_spec(stack, second_runner))
    stack.up()  # restarts the session's own runner if it was killed


def _submit(admin: httpx.Client, dataset: str, **config: object) -> dict:
    response = admin.post(
        "/api/v1/jobs",
        json={"name": "t", "task_type": "detect", "model": "yolo11n", "dataset_id": dataset, "config": CONFIG | config},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _wait(admin: httpx.Client, job_id: str, predicate, timeout: float = 180) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        job = admin.get(f"/api/v1/jobs/{job_id}").json()
        if predicate(job):
            return job
        assert time.monotonic() < deadline, f"timed out; job error {job['error']}; job is {job}"
        time.sleep(0.3)


def _epochs(admin: httpx.Client, job_id: str) -> list[list[int]]:
    attempts = admin.get(f"/api/v1/jobs/{job_id}/metrics").json()["attempts"]
    return [[e["epoch"] for e in a["epochs"]] for a in attempts]


def _started_runners(stack: LocalStack, job_ids: set[str]) -> dict[str, list[str]]:
    async def read() -> dict[str, list[str]]:
        consumer = AIOKafkaConsumer(
            "job.lifecycle.v1",
            bootstrap_servers=stack.cfg.kafka_bootstrap,
            group_id=f"t-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found: dict[str, list[str]] = {}
        try:
            batches = await consumer.getmany(timeout_ms=3000, max_records=100000)
            for records in batches.values():
                for record in records:
                    data = json.loads(record.value)
                    if data["job_id"] in job_ids and data["status"] == "started":
                        found.setdefault(data["job_id"], []).append(data["runner_id"])
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_two_runners_share_three_jobs(stack: LocalStack, admin: httpx.Client, dataset_id: str, second_runner: str):
    jobs = [_submit(admin, dataset_id) for _ in range(3)]
    done = [_wait(admin, j["id"], lambda j: j["status"] in ("completed", "failed") and j["best_epoch"]) for j in jobs]
    assert [j["status"] for j in done] == ["completed"] * 3, [j["error"] for j in done]
    for job in done:
        assert job["attempt"] == 1 and job["checkpoints"]["last"]["uri"] and job["best_metrics"]
        assert _epochs(admin, job["id"]) == [[1, 2]]
        assert admin.get(f"/api/v1/jobs/{job['id']}/logs", params={"limit": 5}).json()["lines"], "trainer logs"
    runners = _started_runners(stack, {j["id"] for j in jobs})
    assert all(len(r) == 1 for r in runners.values()), runners  # each job on exactly one runner


def test_runner_killed_mid_training_is_resumed_elsewhere(
    stack: LocalStack, admin: httpx.Client, dataset_id: str, second_runner: str
):
    job = _submit(admin, dataset_id, epochs=LONG)
    running = _wait(admin, job["id"], lambda j: j["checkpoints"].get("last") and j["runner_id"])
    victim = running["runner_id"]
    name = "trainer-runner-b" if victim == second_runner else "trainer-runner"
    proc = stack.table.find(name)
    assert proc is not None
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its trainer child: a lost machine
    psutil.wait_procs([proc], timeout=10)
    resumed = _wait(
        admin, job["id"], lambda j: j["attempt"] == 2 and j["status"] == "completed" and j["epoch"] == LONG, timeout=240
    )
    assert resumed["runner_id"] != victim
    epochs = _epochs(admin, job["id"])
    assert len(epochs) == 2, (epochs, resumed)
    first, second = epochs
    # Resumed from a checkpoint (not from scratch), no later than right after the last epoch attempt 1 finished.
    assert running["checkpoints"]["last"]["epoch"] + 1 <= second[0] <= first[-1] + 1 and second[-1] == LONG
    assert len(second) == len(set(second)), "no duplicate epochs within the resumed attempt"


def test_sigterm_hands_running_jobs_back(stack: LocalStack, admin: httpx.Client, dataset_id: str, second_runner: str):
    job = _submit(admin, dataset_id, epochs=LONG)
    running = _wait(admin, job["id"], lambda j: j["status"] == "running" and j["checkpoints"].get("last"))
    name = "trainer-runner-b" if running["runner_id"] == second_runner else "trainer-runner"
    stack.table.stop(name, timeout=60)  # SIGTERM: stop taking jobs, checkpoint, hand back
    handed = _wait(admin, job["id"], lambda j: j["attempt"] == 2, timeout=60)
    assert handed["runner_id"] != running["runner_id"] or handed["status"] == "queued"
    done = _wait(admin, job["id"], lambda j: j["status"] == "completed" and j["epoch"] == LONG, timeout=240)
    assert done["attempt"] == 2
    first, second = _epochs(admin, job["id"])
    assert second[0] == first[-1] + 1 or second[0] == first[-1], "resumed where the hand-back checkpoint left off"


def second_runner_spec(stack: LocalStack, runner_id: str) -> ProcessSpec:
    base = service_spec(stack.cfg, "trainer-runner")
    env = {
        **base.env,
        "VTP_HTTP_PORT": str(free_port()),
        "VTP_RUNNER_ID": runner_id,
        "VTP_WORK_DIR": str(stack.cfg.run_path / "data" / "runner-b"),
    }
    return ProcessSpec("trainer-runner-b", base.argv, env, cwd=base.cwd)


def test_cancel_running_job_within_ten_seconds(stack: LocalStack, admin: httpx.Client, dataset_id: str):
    job = _submit(admin, dataset_id, epochs=50)
    _wait(admin, job["id"], lambda j: j["status"] == "running" and j["checkpoints"].get("last"))
    asked = time.monotonic()
    assert admin.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 202
    done = _wait(admin, job["id"], lambda j: j["status"] == "cancelled", timeout=30)
    assert time.monotonic() - asked < 10
    assert done["checkpoints"]["last"]["uri"]
