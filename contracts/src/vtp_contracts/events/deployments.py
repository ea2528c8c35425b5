"""Inference deployment events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from vtp_contracts.base import EventData, TaskType


class TrafficShare(EventData):
    """One export's share of a deployment's requests."""

    export_id: UUID
    export_version: int | None = Field(None, ge=1)
    weight: int = Field(ge=0, le=100, description="Percent of the deployment's requests this export answers.")


class DeploymentChanged(EventData):
    """A deployment was created, updated, became ready, failed, was stopped or deleted.

    Every inference replica reads every one (no shared consumer group) to drop what it
    has loaded for the deployment; the next request loads what the database says then.
    """

    deployment_id: UUID
    project_id: UUID
    status: Literal["creating", "ready", "updated", "failed", "stopped", "deleted"]
    export_id: UUID | None = None
    model_uri: str | None = None
    runtime: Literal["onnxruntime", "openvino", "triton"] | None = None
    task_type: TaskType | None = None
    message: str | None = Field(None, description="Human-readable reason, e.g. why it failed.")
    occurred_at: datetime
    name: str | None = Field(None, description="The deployment's name: its model name in the Open Inference Protocol.")
    export_version: int | None = Field(
        None, ge=1, description="The served export's version within its job (v1, v2, ...)."
    )
    model_sha256: str | None = Field(None, description="SHA-256 of the model file the replicas load and verify.")
    error_code: str | None = Field(None, description="Why it failed, e.g. MODEL_INVALID, PACKAGE_INTEGRITY.")
    traffic: list[TrafficShare] | None = Field(
        None,
        description="The exports that answer and their weights (sum 100): the current export, and a canary when "
        "the deployment splits its traffic between two exports.",
    )
