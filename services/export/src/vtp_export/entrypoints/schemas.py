"""Request and response bodies of the exports REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vtp_export.domain.model import Export


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: uuid.UUID
    checkpoint: str | int = Field("best", description="best, last, or a recorded epoch number")
    format: str = Field(min_length=1, max_length=20, description="See GET /api/v1/exports/capabilities.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="imgsz, half, int8, dynamic, simplify, opset, batch, nms"
    )

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint(cls, value: str | int) -> str | int:
        if isinstance(value, str) and value not in ("best", "last"):
            raise ValueError("best, last, or a recorded epoch number")
        if isinstance(value, int) and value < 0:
            raise ValueError("an epoch number is not negative")
        return value


class ExportOut(BaseModel):
    id: uuid.UUID
    job_id: uuid.UUID
    version: int
    name: str = Field(description="v1, v2, ... within the job")
    format: str
    options: dict[str, Any]
    task_type: str
    checkpoint: dict[str, Any]
    status: str
    stage: str | None
    attempt: int
    is_default: bool
    artifact: dict[str, Any] | None
    parity: dict[str, Any] | None
    metadata: dict[str, Any]
    error: dict[str, Any] | None
    timings: dict[str, Any]

    @staticmethod
    def of(export: Export) -> ExportOut:
        error = {"code": export.error_code, "message": export.error_message} if export.error_code else None
        artifact = None
        if export.artifact:
            artifact = {
                "sha256": export.artifact.get("sha256"),
                "size_bytes": export.artifact.get("size_bytes"),
                "download": f"/api/v1/exports/{export.id}/download",
            }
        checkpoint = {k: export.checkpoint.get(k) for k in ("kind", "epoch", "sha256", "size_bytes")}
        timings: dict[str, datetime | float | None] = {
            "created_at": export.created_at,
            "started_at": export.started_at,
            "finished_at": export.finished_at,
            **export.timings,
        }
        return ExportOut(
            id=export.id,
            job_id=export.job_id,
            version=export.version,
            name=f"v{export.version}",
            format=export.format,
            options=export.options,
            task_type=export.task_type,
            checkpoint=checkpoint,
            status=str(export.status),
            stage=export.stage,
            attempt=export.attempt,
            is_default=export.is_default,
            artifact=artifact,
            parity=export.parity,
            metadata=export.package_metadata,
            error=error,
            timings=timings,
        )


class ExportPage(BaseModel):
    items: list[ExportOut]
    total: int
    limit: int
    offset: int
