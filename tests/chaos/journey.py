"""The in-flight workload of a scenario: training jobs and their webhooks (the upload: upload.py).

A `Journey` is one project with its own webhook subscription, so each scenario checks only
its own deliveries. Every wait polls against a deadline; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from vtp_contracts.catalog import JOB_REQUESTED
from vtp_localstack.stack import LocalStack

from ..integration.datasets.conftest import upload
from ..integration.notifier.conftest import Project, new_project
from ..integration.notifier.webhook_receiver import Endpoint, Receiver

JOB_CONFIG = {"imgsz": 64, "batch": 8, "workers": 0, "seed": 0}
HOOK_TYPES = ["job.lifecycle.v1", "epoch.progress.v1"]


def eventually(check: Callable[[], Any], what: str, timeout: float = 240.0, interval: float = 0.3) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except httpx.HTTPError as exc:  # the gateway or a service may be down for a moment
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}"[:2000])
        time.sleep(interval)


def commands_for(bootstrap: str, job_id: str) -> list[dict[str, Any]]:
    """Every `job.requested` record of `job_id` in the broker, read without a consumer group."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()
            tps = [TopicPartition(JOB_REQUESTED.topic, p) for p in consumer.partitions_for_topic(JOB_REQUESTED.topic)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            found: list[dict[str, Any]] = []
            while any([await consumer.position(tp) < end[tp] for tp in tps]):
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found += [
                        json.loads(r.value or b"{}") | {"ce_id": dict(r.headers).get("ce_id", b"").decode()}
                        for r in records
                        if r.key == job_id.encode()
                    ]
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


def kill(stack: LocalStack, name: str) -> None:
    """SIGKILL a component and everything in its process group (a lost process, no clean-up)."""
    proc = stack.table.find(name)
    assert proc is not None, f"{name} is not running"
    os.killpg(proc.pid, signal.SIGKILL)
    psutil.wait_procs([proc], timeout=15)


@dataclass
class Journey:
    """One project's job and webhooks through the gateway."""

    api: httpx.Client
    project: Project
    endpoint: Endpoint
    dataset_id: str
    bootstrap: str
    jobs: dict[str, int] = field(default_factory=dict)  # job id -> epochs asked for

    @classmethod
    def begin(cls, admin: httpx.Client, stack: LocalStack, receiver: Receiver, train_zip: bytes) -> Journey:
        project = new_project(admin)
        api = httpx.Client(base_url=stack.cfg.gateway_url, timeout=30, headers=project.headers)
        endpoint = receiver.endpoint()
        created = api.post("/api/v1/subscriptions", json={"url": endpoint.url, "event_types": HOOK_TYPES})
        assert created.status_code == 201, created.text
        endpoint.secret = created.json()["secret"]
        response = upload(api, train_zip, f"train-{uuid.uuid4().hex[:6]}")
        assert response.status_code == 201, response.text
        return cls(api, project, endpoint, str(response.json()["id"]), stack.cfg.kafka_bootstrap)

    def submit(self, epochs: int = 3, timeout: float = 60.0) -> str:
        """Submit a job; retried only while the answer says nothing was created (502/503)."""
        body = {"name": "chaos", "task_type": "detect", "model": "yolo11n", "dataset_id": self.dataset_id}

        def post() -> str | None:
            response = self.api.post("/api/v1/jobs", json=body | {"config": JOB_CONFIG | {"epochs": epochs}})
            if response.status_code in (502, 503):
                return None
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        job_id: str = eventually(post, "a job submission", timeout)
        self.jobs[job_id] = epochs
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/jobs/{job_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_job(self, job_id: str, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 300):  # type: ignore[no-untyped-def]
        def check() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if predicate(job) else None

        return eventually(check, f"job {job_id} {what}", timeout)

    def wait_training(self, job_id: str) -> dict[str, Any]:
        """Until the job has finished its first epoch (so it is mid-training)."""
        job: dict[str, Any] = self.wait_job(job_id, lambda j: j["status"] == "running" and j["epoch"] >= 1, "training")
        return job

    def in_flight(self, epochs: int = 8) -> tuple[str, int]:
        """A job of this journey training now with epochs to go (a new one when the last is nearly
        done); returns its id and the epoch it has reached."""
        current = next(reversed(self.jobs), None)
        if current is not None:
            job = self.job(current)
            if job["status"] == "running" and job["epoch"] <= self.jobs[current] - 2:
                return current, int(job["epoch"])
        job = self.wait_training(self.submit(epochs))
        return str(job["id"]), int(job["epoch"])

    def progressed(self, job_id: str, past_epoch: int) -> None:
        """Until the job moves again (an epoch past `past_epoch`, or completed) and every event of it
        recorded so far has reached the webhook receiver."""
        self.wait_job(job_id, lambda j: j["epoch"] > past_epoch or j["status"] == "completed", "to move on")
        attempts = self.attempts(job_id)
        recorded = {("epoch", a["attempt"], e["epoch"]) for a in attempts for e in a["epochs"]}
        eventually(lambda: recorded <= self.delivered(job_id), f"webhooks of job {job_id} so far", timeout=120)

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/jobs/{job_id}/metrics")
        response.raise_for_status()
        attempts: list[dict[str, Any]] = response.json()["attempts"]
        return attempts

    def check_job(self, job_id: str, timeout: float = 300) -> dict[str, Any]:
        """The job completed once, each epoch recorded once, each event's webhook delivered with one id."""
        job = self.wait_job(job_id, lambda j: j["status"] in ("completed", "failed", "cancelled"), "to finish", timeout)
        total = self.jobs[job_id]
        assert job["status"] == "completed" and job["epoch"] == total, job
        epochs = [[e["epoch"] for e in a["epochs"]] for a in self.attempts(job_id)]
        for per_attempt in epochs:
            assert per_attempt == sorted(set(per_attempt)), f"an epoch recorded twice: {epochs}"
        assert epochs[-1][-1] == total and set().union(*map(set, epochs)) == set(range(1, total + 1)), epochs
        attempt_numbers = [a["attempt"] for a in self.attempts(job_id)]
        expected = {("epoch", a, e) for a, es in zip(attempt_numbers, epochs, strict=True) for e in es}
        expected.add(("completed", job["attempt"], 0))
        eventually(lambda: expected <= self.delivered(job_id), f"webhooks of job {job_id}", timeout=120)
        self.check_webhook_ids(job_id)
        # Each attempt was handed to the runners once: a second copy in the broker would run it twice.
        attempts = [c["attempt"] for c in commands_for(self.bootstrap, job_id)]
        assert len(attempts) == len(set(attempts)), f"job {job_id}: commands per attempt {attempts}"
        return job

    def delivered(self, job_id: str) -> set[tuple[str, int, int]]:
        """(kind, attempt, epoch) of every event of `job_id` its webhook acknowledged."""
        out = set()
        for r in self.endpoint.ok():
            data = r.payload["data"]
            if data.get("job_id") != job_id:
                continue
            if r.payload["type"] == "epoch.progress.v1":
                out.add(("epoch", data["attempt"], data["epoch"]))
            elif data.get("status") == "completed":
                out.add(("completed", data["attempt"], 0))
        return out

    def check_webhook_ids(self, job_id: str) -> None:
        """Redeliveries keep the webhook-id: one id per event, one event per id; one `completed`."""
        ids_of_event: dict[str, set[str]] = defaultdict(set)
        events_of_id: dict[str, set[str]] = defaultdict(set)
        completed = set()
        for r in self.endpoint.received:
            assert r.verified, "every delivery carries a valid signature"
            if r.payload["data"].get("job_id") != job_id:
                continue
            ids_of_event[r.payload["id"]].add(r.webhook_id)
            events_of_id[r.webhook_id].add(r.payload["id"])
            if r.payload["data"].get("status") == "completed":
                completed.add(r.payload["id"])
        assert all(len(v) == 1 for v in ids_of_event.values()), dict(ids_of_event)
        assert all(len(v) == 1 for v in events_of_id.values()), dict(events_of_id)
        assert len(completed) == 1, f"the job completed {len(completed)} times: {completed}"
