"""The job spec: everything a trainer child needs, written as JSON by the runner before it starts one.

Every path is local to the runner's machine: the runner downloads datasets, checkpoints and
weights first, so a trainer never needs the network or the object store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from vtp_contracts.base import TaskType


class JobSpec(BaseModel):
    """One attempt of one job, for one trainer plugin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: UUID
    project_id: UUID
    attempt: int = Field(ge=1)
    framework: str = Field(description="Plugin name, a key of `plugin.PLUGINS`, e.g. `ultralytics`.")
    task_type: TaskType
    model: str = Field(description="Model name (e.g. `yolo11n`) or a local checkpoint path to fine-tune from.")
    model_yaml: str | None = Field(None, description="Architecture file, e.g. `yolo11n-seg.yaml`.")
    train_kwargs: dict[str, Any] = Field(default_factory=dict, description="Framework arguments, already validated.")
    data: Path = Field(description="A data.yaml or the directory holding it; an ImageFolder root for classify.")
    work_dir: Path = Field(description="The attempt's own directory: outputs and checkpoint files go here.")
    resume_from: Path | None = Field(None, description="A `last` checkpoint to continue from.")
    pretrained_weights: Path | None = Field(
        None, description="A checkpoint to fine-tune from (a new run from its weights, not a resume), verified."
    )
    time_limit_seconds: float | None = Field(None, gt=0)

    @classmethod
    def read(cls, path: Path) -> JobSpec:
        """Load a spec file; raises `ValueError` if it is not a valid spec."""
        return cls.model_validate_json(path.read_bytes())

    def write(self, path: Path) -> Path:
        """Write the spec (atomically: a half-written spec is never read) and return `path`."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path
