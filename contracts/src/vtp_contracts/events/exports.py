"""Model export events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from vtp_contracts.base import EventData, ObjectRef

ExportFormat = Literal["onnx", "openvino", "torchscript", "engine", "coreml", "tflite"]


class ExportEvent(EventData):
    """Fields every export event carries; `export_id` is the partition key."""

    export_id: UUID
    project_id: UUID
    job_id: UUID


class ExportRequested(ExportEvent):
    """Export a job's checkpoint to a format and prove it predicts the same."""

    checkpoint: ObjectRef
    format: ExportFormat
    options: dict[str, Any] = Field(default_factory=dict, description="imgsz, half, dynamic, opset, ...")
    requested_at: datetime


class ParityReport(EventData):
    """How closely the exported model reproduces the checkpoint's predictions."""

    passed: bool
    images_compared: int = Field(ge=0)
    max_abs_diff: float | None = None
    metric_delta: dict[str, float] = Field(default_factory=dict)


class ExportCompleted(ExportEvent):
    """The export finished, successfully or not."""

    status: Literal["succeeded", "failed"]
    format: ExportFormat
    artifact: ObjectRef | None = None
    parity: ParityReport | None = None
    error_code: str | None = None
    error_message: str | None = None
    completed_at: datetime
