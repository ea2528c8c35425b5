"""The deployment aggregate: one export served under a name, with its lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    CREATING = "creating"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


RUNTIMES = ("onnxruntime", "openvino", "triton")
# runtime -> the export format it serves (triton: only where a Triton server is configured)
SERVED_RUNTIMES = {"onnxruntime": "onnx", "openvino": "openvino", "triton": "onnx"}
SERVED_TASKS = ("detect", "segment", "pose", "classify")
DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET = 0.25, 0.7, 300


@dataclass
class Deployment:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    export_id: uuid.UUID
    runtime: str
    created_at: datetime
    updated_at: datetime
    status: Status = Status.CREATING
    export_version: int | None = None
    task_type: str = "detect"
    conf: float = DEFAULT_CONF
    iou: float = DEFAULT_IOU
    max_det: int = DEFAULT_MAX_DET
    # uri, sha256, size_bytes of the stored model; `weights`: its second file (OpenVINO's bin, Triton's config.pbtxt)
    model: dict[str, Any] | None = None
    model_meta: dict[str, Any] = field(default_factory=dict)  # names, imgsz, input/output names
    error_code: str | None = None
    error_message: str | None = None
    deleted_at: datetime | None = None
    previous: dict[str, Any] | None = None  # what a rollback returns to
    canary: dict[str, Any] | None = None  # a second export answering a share of requests (domain/traffic.py)

    def serving(self) -> dict[str, Any]:
        return {
            "export_id": str(self.export_id),
            "export_version": self.export_version,
            "model": self.model,
            "model_meta": self.model_meta,
        }

    def switch(self, export_id: uuid.UUID, version: int | None, model: dict[str, Any], meta: dict[str, Any]) -> None:
        """Serve another export; the current one becomes `previous`."""
        if self.status not in (Status.READY, Status.STOPPED):
            raise DeploymentConflict(f"a {self.status} deployment cannot switch exports")
        self.previous = self.serving()
        self.export_id, self.export_version, self.model, self.model_meta = export_id, version, model, meta
        self.canary = None  # a switch ends a traffic split

    def rollback(self) -> None:
        """Serve the previous export again; the current one becomes `previous` (a second rollback undoes it)."""
        if self.previous is None:
            raise NoPreviousExport("this deployment never switched exports")
        if self.status not in (Status.READY, Status.STOPPED):
            raise DeploymentConflict(f"a {self.status} deployment cannot roll back")
        back, self.previous, self.canary = self.previous, self.serving(), None  # and so does a rollback
        self.export_id, self.export_version = uuid.UUID(back["export_id"]), back["export_version"]
        self.model, self.model_meta = back["model"], back["model_meta"]

    def fail(self, code: str, message: str, now: datetime) -> None:
        self.status, self.error_code, self.error_message, self.updated_at = Status.FAILED, code, message, now

    def activate(self, now: datetime) -> bool:
        """Stopped -> ready; True when that changed anything (activating a ready one is a no-op)."""
        return self._move(Status.STOPPED, Status.READY, now)

    def deactivate(self, now: datetime) -> bool:
        """Ready -> stopped; True when that changed anything."""
        return self._move(Status.READY, Status.STOPPED, now)

    def _move(self, source: Status, target: Status, now: datetime) -> bool:
        if self.status == target:
            return False
        if self.status != source:
            raise DeploymentConflict(f"a {self.status} deployment cannot become {target}")
        self.status, self.updated_at = target, now
        return True


class DeploymentNotFound(Exception):
    pass


class DeploymentConflict(Exception):
    """The deployment's state does not allow this (e.g. activating a failed one)."""


class NoPreviousExport(Exception):
    pass


class NameTaken(Exception):
    pass


class NotServing(Exception):
    """Predict on a deployment that is not ready."""


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused: where (JSON pointer), a stable code, and why."""

    pointer: str
    code: str
    message: str


class RequestRefused(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems
