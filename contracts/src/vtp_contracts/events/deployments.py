"""Inference deployment events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from vtp_contracts.base import EventData, TaskType


class DeploymentChanged(EventData):
    """A deployment was created, updated, became ready, failed or was deleted."""

    deployment_id: UUID
    project_id: UUID
    status: Literal["creating", "ready", "updated", "failed", "deleted"]
    export_id: UUID | None = None
    model_uri: str | None = None
    runtime: Literal["onnxruntime", "openvino", "triton"] | None = None
    task_type: TaskType | None = None
    message: str | None = Field(None, description="Human-readable reason, e.g. why it failed.")
    occurred_at: datetime
