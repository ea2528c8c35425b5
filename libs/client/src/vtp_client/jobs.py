"""Training jobs, their metrics and logs, and the trainer frameworks (`/api/v1/jobs`, `/api/v1/trainers`)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from uuid import UUID

from vtp_client._base import Group, Page, Resource

__all__ = ["TERMINAL_JOB_STATUSES", "Epoch", "Job", "JobLogs", "JobMetrics", "Jobs", "LogLine", "Trainer", "Trainers"]

TERMINAL_JOB_STATUSES = frozenset({"completed", "failed", "cancelled"})


class Job(Resource):
    id: UUID
    name: str
    status: str
    attempt: int
    framework: str
    task_type: str
    model: str
    dataset_id: UUID
    snapshot_id: UUID
    split: dict[str, Any] | None = None
    config: dict[str, Any] = {}
    advanced_config: dict[str, Any] = {}
    priority: int = 0
    epoch: int = 0
    total_epochs: int | None = None
    latest_metrics: dict[str, float] = {}
    best_metrics: dict[str, float] = {}
    best_epoch: int | None = None
    eta_seconds: float | None = None
    checkpoints: dict[str, dict[str, Any]] = {}
    base_checkpoint: dict[str, Any] | None = None
    runner_id: str | None = None
    error: dict[str, Any] | None = None
    timings: dict[str, datetime | None] = {}

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES


class Epoch(Resource):
    epoch: int
    total_epochs: int
    train_losses: dict[str, float] = {}
    val_metrics: dict[str, float] = {}
    learning_rate: float | None = None
    epoch_seconds: float | None = None
    gpu_memory_mb: float | None = None
    recorded_at: datetime | None = None


class AttemptMetrics(Resource):
    attempt: int
    epochs: list[Epoch]


class JobMetrics(Resource):
    job_id: UUID
    attempts: list[AttemptMetrics]

    @property
    def epochs(self) -> list[Epoch]:
        """The latest attempt's epochs (what a chart of the job shows)."""
        return self.attempts[-1].epochs if self.attempts else []


class LogLine(Resource):
    attempt: int
    time: datetime
    level: str
    message: str


class JobLogs(Resource):
    job_id: UUID
    lines: list[LogLine]
    limit: int
    offset: int


class Trainer(Resource):
    name: str
    description: str = ""
    tasks: list[str] = []
    models: list[str] = []
    presets: list[str] = []


class Jobs(Group):
    """`client.jobs`. An invalid config raises `ApiError` 422 listing every problem (`#/body/config/...`)."""

    def create(
        self,
        dataset_id: UUID | str,
        *,
        name: str,
        task_type: str = "detect",
        model: str | dict[str, Any] = "yolo11n",
        config: dict[str, Any] | None = None,
        advanced_config: dict[str, Any] | None = None,
        framework: str = "ultralytics",
        snapshot_id: UUID | str | None = None,
        split: dict[str, Any] | None = None,
        priority: int = 0,
    ) -> Job:
        """Submit a training job. `model`: a name, an earlier job's id, or `{"job_id", "checkpoint"}`."""
        body: dict[str, Any] = {
            "name": name,
            "framework": framework,
            "task_type": task_type,
            "model": model,
            "dataset_id": str(dataset_id),
            "config": config or {},
            "advanced_config": advanced_config or {},
            "priority": priority,
        }
        if snapshot_id is not None:
            body["snapshot_id"] = str(snapshot_id)
        if split is not None:
            body["split"] = split
        return Job.model_validate(self._t.json("POST", "/api/v1/jobs", json=body))

    def list(
        self, *, status: str | None = None, dataset_id: UUID | str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[Job]:
        params = {"status": status, "dataset_id": dataset_id and str(dataset_id), "limit": limit, "offset": offset}
        return Page[Job].model_validate(self._t.json("GET", "/api/v1/jobs", params=params))

    def get(self, job_id: UUID | str) -> Job:
        return Job.model_validate(self._t.json("GET", f"/api/v1/jobs/{job_id}"))

    def cancel(self, job_id: UUID | str, reason: str | None = None) -> Job:
        """Ask the runner to stop (202); a finished job answers 409 `job_finished`."""
        body = {"reason": reason} if reason else None
        return Job.model_validate(self._t.json("POST", f"/api/v1/jobs/{job_id}/cancel", json=body))

    def restart(self, job_id: UUID | str, *, resume: bool = True) -> Job:
        """Run a finished job again, from its last checkpoint when `resume` and there is one."""
        return Job.model_validate(self._t.json("POST", f"/api/v1/jobs/{job_id}/restart", json={"resume": resume}))

    def metrics(self, job_id: UUID | str) -> JobMetrics:
        return JobMetrics.model_validate(self._t.json("GET", f"/api/v1/jobs/{job_id}/metrics"))

    def logs(
        self,
        job_id: UUID | str,
        *,
        level: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> JobLogs:
        params = {
            "level": level,
            "since": since and since.isoformat(),
            "until": until and until.isoformat(),
            "limit": limit,
            "offset": offset,
        }
        return JobLogs.model_validate(self._t.json("GET", f"/api/v1/jobs/{job_id}/logs", params=params))

    def wait(self, job_id: UUID | str, *, timeout: float = 3600.0, poll: float = 1.0) -> Job:
        """Poll until the job is completed, failed or cancelled; `TimeoutError` after `timeout` seconds.

        The live feed can be a moment ahead of the jobs service: after `feed.follow_job` ends,
        this returns the job as the service records it.
        """
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.finished:
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout:.0f} s")
            time.sleep(poll)


class Trainers(Group):
    """`client.trainers`: frameworks, their tasks, models and presets, and their config schemas."""

    def list(self) -> list[Trainer]:
        return [Trainer.model_validate(t) for t in self._t.json("GET", "/api/v1/trainers")]

    def config_schema(self, framework: str = "ultralytics") -> dict[str, Any]:
        """`{"framework", "basic", "advanced", "presets", "groups"}`: JSON Schemas and the presets' configs."""
        schema: dict[str, Any] = self._t.json("GET", f"/api/v1/trainers/{framework}/config-schema")
        return schema

    def presets(self, framework: str = "ultralytics") -> dict[str, dict[str, Any]]:
        """Preset name -> `{"description", "config", "advanced_config"}`."""
        presets: dict[str, dict[str, Any]] = self.config_schema(framework)["presets"]
        return presets
