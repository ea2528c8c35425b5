"""Deployments of exports and predictions on them (`/api/v1/deployments`)."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from vtp_client._base import Group, Page, Resource

__all__ = ["Deployment", "Deployments", "Detection", "ImageResult", "Prediction"]

Image = Path | str | bytes
"""An image file (path) or its bytes (JPEG, PNG, BMP, WebP, TIFF)."""


class Deployment(Resource):
    id: UUID
    name: str
    export_id: UUID
    export_version: int | None = None
    task_type: str
    runtime: str
    status: str
    defaults: dict[str, Any] = {}
    model: dict[str, Any] | None = None
    classes: dict[str, str] = {}
    imgsz: int | None = None
    error: dict[str, Any] | None = None
    previous_export: dict[str, Any] | None = None
    traffic: list[dict[str, Any]] = []
    """Which exports answer, with weights: the current one, and a canary during a split."""
    created_at: datetime
    updated_at: datetime


class Detection(Resource):
    class_id: int
    class_name: str
    confidence: float
    xyxy: list[float]
    """Corners in the original image's pixels."""
    xywhn: list[float]
    """Centre, width and height normalised to the image."""


class ImageResult(Resource):
    index: int
    width: int
    height: int
    detections: list[Detection] = []
    timings_ms: dict[str, float] = {}


class Prediction(Resource):
    deployment_id: UUID
    name: str
    export_id: UUID
    export_version: int | None = None
    task: str
    parameters: dict[str, Any] = {}
    images: list[ImageResult]
    total_ms: float


def _part(image: Image, index: int) -> tuple[str, tuple[str, bytes, str]]:
    if isinstance(image, bytes):
        return "file", (f"image-{index}", image, "application/octet-stream")
    path = Path(image)
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return "file", (path.name, path.read_bytes(), kind)


class Deployments(Group):
    """`client.deployments`: serve a succeeded export, switch it, roll back, predict."""

    CREATE_TIMEOUT = 600.0  # the answer comes once the model is fetched, verified, loaded and probed

    def create(
        self,
        export_id: UUID | str,
        name: str,
        *,
        runtime: str = "onnxruntime",
        conf: float | None = None,
        iou: float | None = None,
        max_det: int | None = None,
    ) -> Deployment:
        """Deploy an export; answers when it is `ready` (or `failed`, with `error.code`)."""
        body: dict[str, Any] = {"export_id": str(export_id), "name": name, "runtime": runtime}
        body |= {k: v for k, v in (("conf", conf), ("iou", iou), ("max_det", max_det)) if v is not None}
        response = self._t.json("POST", "/api/v1/deployments", json=body, timeout=self.CREATE_TIMEOUT)
        return Deployment.model_validate(response)

    def list(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> Page[Deployment]:
        params = {"status": status, "limit": limit, "offset": offset}
        return Page[Deployment].model_validate(self._t.json("GET", "/api/v1/deployments", params=params))

    def get(self, deployment_id: UUID | str) -> Deployment:
        return Deployment.model_validate(self._t.json("GET", f"/api/v1/deployments/{deployment_id}"))

    def update(
        self,
        deployment_id: UUID | str,
        *,
        export_id: UUID | str | None = None,
        name: str | None = None,
        conf: float | None = None,
        iou: float | None = None,
        max_det: int | None = None,
        traffic: dict[UUID | str, int] | None = None,
    ) -> Deployment:
        """Switch to another export (loaded and checked before traffic moves), rename, or change defaults.

        `traffic` (sent alone) splits requests: `{current_export: 80, other_export: 20}`; one export
        at 100 ends a split (the current one) or switches (another).
        """
        changes = {"export_id": export_id and str(export_id), "name": name, "conf": conf, "iou": iou}
        body: dict[str, Any] = {k: v for k, v in (changes | {"max_det": max_det}).items() if v is not None}
        if traffic is not None:
            body["traffic"] = [{"export_id": str(e), "weight": w} for e, w in traffic.items()]
        path = f"/api/v1/deployments/{deployment_id}"
        return Deployment.model_validate(self._t.json("PATCH", path, json=body, timeout=self.CREATE_TIMEOUT))

    def rollback(self, deployment_id: UUID | str) -> Deployment:
        """Serve the export served before the last switch again (not retried: it toggles)."""
        path = f"/api/v1/deployments/{deployment_id}/rollback"
        return Deployment.model_validate(self._t.json("POST", path, timeout=self.CREATE_TIMEOUT))

    def activate(self, deployment_id: UUID | str) -> Deployment:
        path = f"/api/v1/deployments/{deployment_id}/activate"
        return Deployment.model_validate(self._t.json("POST", path, idempotent=True))

    def deactivate(self, deployment_id: UUID | str) -> Deployment:
        path = f"/api/v1/deployments/{deployment_id}/deactivate"
        return Deployment.model_validate(self._t.json("POST", path, idempotent=True))

    def delete(self, deployment_id: UUID | str) -> None:
        self._t.request("DELETE", f"/api/v1/deployments/{deployment_id}")

    def predict(
        self,
        deployment_id: UUID | str,
        images: Image | Sequence[Image],
        *,
        conf: float | None = None,
        iou: float | None = None,
        max_det: int | None = None,
        classes: Sequence[int] | None = None,
        imgsz: int | None = None,
        timeout: float = 120.0,
    ) -> Prediction:
        """Detections for each image (at most 16 per request); unset parameters use the deployment's defaults.

        Retried like a read (it changes nothing; a usage count includes every try that arrived).
        """
        many = [images] if isinstance(images, Path | str | bytes) else list(images)
        files = [_part(image, i) for i, image in enumerate(many)]
        params: dict[str, Any] = {"conf": conf, "iou": iou, "max_det": max_det, "imgsz": imgsz}
        if classes:
            params["classes"] = ",".join(str(c) for c in classes)
        path = f"/api/v1/deployments/{deployment_id}/predict"
        answer = self._t.json("POST", path, params=params, files=files, timeout=timeout, idempotent=True)
        return Prediction.model_validate(answer)
