"""Model export events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from vtp_contracts.base import EventData, ObjectRef, TaskType

ExportFormat = Literal[
    "onnx", "openvino", "torchscript", "engine", "coreml", "tflite", "ncnn", "mnn", "paddle", "litert"
]
ExportStage = Literal["exporting", "validating", "packaging"]


class ExportEvent(EventData):
    """Fields every export event carries; `export_id` is the partition key."""

    export_id: UUID
    project_id: UUID
    job_id: UUID


class ExportRequested(ExportEvent):
    """Export a job's checkpoint to a format and prove it predicts the same.

    Re-published with a higher `attempt` when an exporter died holding it; a worker only
    runs the attempt the export service's database currently expects.
    """

    checkpoint: ObjectRef
    format: ExportFormat
    options: dict[str, Any] = Field(default_factory=dict, description="imgsz, half, dynamic, opset, ...")
    requested_at: datetime
    attempt: int = Field(1, ge=1)
    version: int | None = Field(None, ge=1, description="The export's version number within its job (v1, v2, ...).")
    task_type: TaskType | None = None
    checkpoint_kind: str | None = Field(None, description="best, last, or epoch-N: what the user asked for.")
    snapshot_id: UUID | None = Field(None, description="The job's pinned snapshot, source of the parity images.")
    snapshot_content_hash: str | None = None
    split_fingerprint: str | None = Field(None, description="Blob of the split frozen with the snapshot.")
    split: dict[str, Any] | None = Field(None, description="The job's split override, when it had one.")


class ParityReport(EventData):
    """How closely the exported model reproduces the checkpoint's predictions."""

    passed: bool
    images_compared: int = Field(ge=0)
    max_abs_diff: float | None = None
    metric_delta: dict[str, float] = Field(default_factory=dict)
    precision: str | None = Field(None, description="fp32, fp16 or int8: which tolerances applied.")
    min_box_iou: float | None = Field(None, description="Lowest IoU of a matched detection pair.")
    max_score_diff: float | None = None
    class_agreement: float | None = Field(None, description="Share of matched detections with the same class.")
    unmatched: int | None = Field(None, description="Detections present in only one of the two models.")
    failures: list[str] = Field(default_factory=list, description="Each tolerance that was exceeded.")
    status: Literal["passed", "failed", "not_run"] | None = Field(
        None,
        description="not_run: the format's runtime cannot run on the exporter (CoreML off macOS); such an export"
        " succeeds with passed=false, is never a job's default and is refused by deployments.",
    )


class ExportProgress(ExportEvent):
    """An export attempt entered a stage (exporting, validating, packaging)."""

    attempt: int = Field(ge=1)
    stage: ExportStage
    format: ExportFormat
    time: datetime


class ExportCompleted(ExportEvent):
    """The export finished, successfully or not."""

    status: Literal["succeeded", "failed"]
    format: ExportFormat
    artifact: ObjectRef | None = None
    parity: ParityReport | None = None
    error_code: str | None = None
    error_message: str | None = None
    completed_at: datetime
    attempt: int | None = Field(None, ge=1)
    version: int | None = Field(None, ge=1)
    is_default: bool | None = Field(None, description="Deployments pick the job's default export when none is named.")
