"""Request and response bodies of the jobs REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictFloat, StrictInt, Tag

from vtp_jobs.domain.model import Job
from vtp_runtime.http.fields import NulFreeStr


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["auto", "manual", "partial"] = "auto"
    # Strict numbers and booleans here and below: the document says number, and `true` or "5"
    # is not one (pydantic would coerce them).
    train: StrictFloat = Field(0.8, ge=0, le=1)
    val: StrictFloat = Field(0.2, ge=0, le=1)
    test: StrictFloat = Field(0.0, ge=0, le=1)
    seed: StrictInt = 42


class CheckpointIn(BaseModel):
    """A checkpoint an earlier job of this project recorded."""

    model_config = ConfigDict(extra="forbid")
    job_id: uuid.UUID
    checkpoint: Literal["best", "last"] = "best"


def _model_kind(value: Any) -> str | None:
    return "name" if isinstance(value, str) else "checkpoint" if isinstance(value, dict | CheckpointIn) else None


# A name or a checkpoint object, told apart by type, so a bad value gets the errors of its own shape only.
# The tag appears in error locations (`/model/checkpoint/job_id`); the route drops it.
ModelIn = Annotated[
    Annotated[Annotated[str, Field(min_length=1, max_length=500)], Tag("name")]
    | Annotated[CheckpointIn, Tag("checkpoint")],
    Discriminator(
        _model_kind,
        custom_error_type="model_shape",
        custom_error_message="model should be a name, a job id, or {job_id, checkpoint}",
    ),
]


class JobIn(BaseModel):
    """The shape of a job request; trainer-specific rules are checked by `vtp_trainers`."""

    model_config = ConfigDict(extra="forbid")
    name: NulFreeStr = Field(min_length=1, max_length=200)
    framework: NulFreeStr = Field("ultralytics", min_length=1, max_length=50)
    task_type: NulFreeStr = Field(min_length=1, max_length=20, description="detect, segment, classify or pose")
    model: ModelIn = Field(
        description="A model name (e.g. yolo11n), or an earlier finished job of this project to fine-tune from: "
        "its id (its best checkpoint) or {job_id, checkpoint}. Object-store URIs are refused.",
    )
    dataset_id: uuid.UUID
    snapshot_id: uuid.UUID | None = Field(None, description="Pinned now from the dataset's head when absent.")
    split: SplitIn | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    advanced_config: dict[str, Any] = Field(default_factory=dict)
    priority: StrictInt = Field(0, ge=-100, le=100)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: NulFreeStr | None = Field(None, max_length=500)


class RestartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resume: StrictBool = Field(True, description="Continue from the last checkpoint when there is one.")


class JobOut(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    attempt: int
    framework: str
    task_type: str
    model: str
    dataset_id: uuid.UUID
    snapshot_id: uuid.UUID
    split: dict[str, Any] | None
    config: dict[str, Any]
    advanced_config: dict[str, Any]
    priority: int
    epoch: int
    total_epochs: int | None
    latest_metrics: dict[str, float]
    best_metrics: dict[str, float]
    best_epoch: int | None
    eta_seconds: float | None
    checkpoints: dict[str, dict[str, Any]]
    base_checkpoint: dict[str, Any] | None = Field(
        description="The checkpoint this job fine-tunes from: job_id, checkpoint, epoch, uri, sha256, size_bytes."
    )
    runner_id: str | None
    error: dict[str, Any] | None
    timings: dict[str, datetime | None]

    @staticmethod
    def of(job: Job) -> JobOut:
        error = None
        if job.error_code:
            error = {"code": job.error_code, "message": job.error_message, "last_good_epoch": job.last_good_epoch}
        timings = {
            "created_at": job.created_at,
            "queued_at": job.queued_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "last_heartbeat_at": job.last_heartbeat_at,
            "cancel_requested_at": job.cancel_requested_at,
        }
        fields = {k: getattr(job, k) for k in JobOut.model_fields if hasattr(job, k) and k not in ("status",)}
        return JobOut(**fields, status=str(job.status), error=error, timings=timings)


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int
