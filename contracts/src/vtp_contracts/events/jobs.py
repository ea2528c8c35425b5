"""Training job events: commands to runners and what runners report back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from vtp_contracts.base import EventData, Metrics, ObjectRef, TaskType


class JobEvent(EventData):
    """Fields every job event carries; `job_id` is the partition key."""

    job_id: UUID
    project_id: UUID
    attempt: int = Field(ge=1, description="Attempt number; events of a stale attempt are ignored.")


class SplitOverride(EventData):
    """A split given with the job; it wins over the dataset's stored split."""

    method: Literal["auto", "manual", "partial"] = "auto"
    train: float = Field(0.8, ge=0, le=1)
    val: float = Field(0.2, ge=0, le=1)
    test: float = Field(0.0, ge=0, le=1)
    seed: int = 42


class CheckpointPointer(EventData):
    """Where a resumed attempt continues from."""

    uri: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    epoch: int = Field(ge=0)


class JobRequested(JobEvent):
    """A command for any trainer-runner: train this job (attempt `attempt`)."""

    name: str
    framework: str = Field(description="Trainer plugin name, e.g. `ultralytics`.")
    task_type: TaskType
    model: str = Field(
        description="Model name (e.g. `yolo11n`), or the id of the earlier job whose `base_checkpoint` this job "
        "fine-tunes from."
    )
    dataset_id: UUID
    snapshot_id: UUID
    snapshot_content_hash: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Content hash of the snapshot: its manifest in object storage."
    )
    split_fingerprint: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the snapshot's frozen split assignment blob."
    )
    split: SplitOverride | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="Basic config (epochs, batch, imgsz, ...).")
    advanced_config: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0
    resume_from: CheckpointPointer | None = None
    base_checkpoint: ObjectRef | None = Field(
        None,
        description="Weights to fine-tune from: a checkpoint the jobs service recorded for an earlier job of the same "
        "project (never a client-given URI). Verify its `sha256` before loading; `resume_from` wins when both are set.",
    )
    requested_at: datetime


class JobCancelRequested(JobEvent):
    """Ask whichever runner holds the job to stop it at the next batch boundary."""

    reason: str | None = None
    requested_at: datetime


JobErrorCode = Literal[
    "OOM",
    "DATASET_NOT_FOUND",
    "INVALID_CONFIG",
    "CHECKPOINT_UPLOAD_FAILED",
    "CHECKPOINT_INTEGRITY",
    "TIMEOUT",
    "USER_STOPPED",
    "TRAINER_CRASHED",
    "RUNNER_LOST",
]


class JobError(EventData):
    """Why an attempt failed."""

    code: JobErrorCode
    message: str
    last_good_epoch: int | None = Field(None, ge=0)


class JobLifecycle(JobEvent):
    """A job's state changed on a runner (or, for `requeued`, in the jobs service)."""

    status: Literal["started", "completed", "failed", "cancelled", "requeued"]
    runner_id: str | None = None
    error: JobError | None = None
    epoch: int | None = Field(None, ge=0, description="Last finished epoch when the event was sent.")
    checkpoint: CheckpointPointer | None = Field(
        None, description="The `last` checkpoint at this point (requeued, cancelled): where a new attempt resumes."
    )
    occurred_at: datetime


class JobHeartbeat(JobEvent):
    """The runner holding the job is alive; sent every few seconds."""

    runner_id: str
    epoch: int | None = Field(None, ge=0)
    sent_at: datetime


class EpochProgress(JobEvent):
    """One finished epoch with its losses and validation metrics."""

    epoch: int = Field(ge=1)
    total_epochs: int = Field(ge=1)
    phase: Literal["train", "val"] = "val"
    train_losses: Metrics = Field(default_factory=dict)
    val_metrics: Metrics = Field(
        default_factory=dict, description="e.g. mAP50, mAP50-95, precision, recall, top1, top5."
    )
    learning_rate: float | None = None
    epoch_seconds: float | None = Field(None, ge=0)
    eta_seconds: float | None = Field(None, ge=0)
    gpu_memory_mb: float | None = Field(None, ge=0)


class CheckpointSaved(JobEvent):
    """A checkpoint was uploaded to object storage (the upload happens first)."""

    kind: Literal["last", "best"]
    epoch: int = Field(ge=0)
    checkpoint: ObjectRef
    metrics: Metrics = Field(default_factory=dict)


class LogLine(EventData):
    """One line of trainer output."""

    time: datetime
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str


class JobLog(JobEvent):
    """A batch of log lines; errors are flushed at once."""

    lines: list[LogLine] = Field(min_length=1)
