"""Request and response bodies of the deployments REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vtp_inference.domain.model import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET, RUNTIMES, Deployment
from vtp_inference.domain.traffic import shares

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"  # usable as an Open Inference Protocol model name in a URL


class DeploymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    export_id: uuid.UUID
    name: str = Field(pattern=NAME, description="Unique among the project's deployments.")
    runtime: str = Field("onnxruntime", description=f"One of {', '.join(RUNTIMES)} (triton: where configured).")
    conf: float = Field(DEFAULT_CONF, gt=0, le=1)
    iou: float = Field(DEFAULT_IOU, gt=0, le=1)
    max_det: int = Field(DEFAULT_MAX_DET, ge=1, le=1000)


class TrafficShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    export_id: uuid.UUID
    weight: int = Field(ge=0, le=100, description="Percent of the requests this export answers.")


class DeploymentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traffic: list[TrafficShareIn] | None = Field(
        None,
        min_length=1,
        description="Split requests between the current export and one other (weights sum to 100; the other is "
        "loaded and checked before it gets traffic). One entry at 100: the current one ends a split, another "
        "switches to it. Sent alone.",
    )
    export_id: uuid.UUID | None = Field(
        None, description="Serve another export of the project (loaded and checked before traffic moves)."
    )
    name: str | None = Field(None, pattern=NAME)
    conf: float | None = Field(None, gt=0, le=1)
    iou: float | None = Field(None, gt=0, le=1)
    max_det: int | None = Field(None, ge=1, le=1000)


class DeploymentOut(BaseModel):
    id: uuid.UUID
    name: str
    export_id: uuid.UUID
    export_version: int | None
    task_type: str
    runtime: str
    status: str
    defaults: dict[str, Any]
    model: dict[str, Any] | None
    classes: dict[str, str]
    imgsz: int | None
    error: dict[str, Any] | None
    previous_export: dict[str, Any] | None = Field(description="What POST /{id}/rollback returns to.")
    traffic: list[dict[str, Any]] = Field(
        description="Which exports answer, with weights: the current one, and a canary during a split."
    )
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def of(d: Deployment) -> DeploymentOut:
        error = {"code": d.error_code, "message": d.error_message} if d.error_code else None
        model = {"sha256": d.model["sha256"], "size_bytes": d.model["size_bytes"]} if d.model else None
        return DeploymentOut(
            id=d.id,
            name=d.name,
            export_id=d.export_id,
            export_version=d.export_version,
            task_type=d.task_type,
            runtime=d.runtime,
            status=str(d.status),
            defaults={"conf": d.conf, "iou": d.iou, "max_det": d.max_det},
            model=model,
            classes=d.model_meta.get("names", {}),
            imgsz=d.model_meta.get("imgsz"),
            error=error,
            previous_export={k: d.previous[k] for k in ("export_id", "export_version")} if d.previous else None,
            traffic=shares(d),
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class DeploymentPage(BaseModel):
    items: list[DeploymentOut]
    total: int
    limit: int
    offset: int
