"""What a trainer child process reports to its runner: one JSON object per line on the report pipe.

The child writes these to the inherited file descriptor `VTP_REPORT_FD` (see `sdk`); the runner
reads them with `supervisor.JobProcess.messages()` and turns them into the public job events
(`vtp_contracts.events.jobs`). Epochs are 1-based counts of finished epochs, as in `EpochProgress`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from vtp_contracts.events.jobs import JobErrorCode

Metrics = dict[str, float]
LogLevel = Literal["debug", "info", "warning", "error"]
StopKind = Literal["cancel", "requeue"]


class _Message(BaseModel):
    # Unknown fields are ignored, so a plugin built against a newer SDK still talks to an older runner.
    model_config = ConfigDict(frozen=True)


class Started(_Message):
    """The child is up and about to train."""

    type: Literal["started"] = "started"
    pid: int


class Progress(_Message):
    """One finished epoch (train and validation)."""

    type: Literal["progress"] = "progress"
    epoch: int = Field(ge=1)
    total_epochs: int = Field(ge=1)
    train_losses: Metrics = Field(default_factory=dict)
    val_metrics: Metrics = Field(default_factory=dict)
    learning_rate: float | None = None
    epoch_seconds: float | None = Field(None, ge=0)
    eta_seconds: float | None = Field(None, ge=0)
    gpu_memory_mb: float | None = Field(None, ge=0)


class CheckpointReady(_Message):
    """A checkpoint file the runner now owns: it is never written again; upload it, then delete it.

    `epoch` counts the epochs the weights have finished (0 would mean none).
    """

    type: Literal["checkpoint"] = "checkpoint"
    kind: Literal["last", "best"]
    path: Path
    epoch: int = Field(ge=0)
    metrics: Metrics = Field(default_factory=dict)


class Log(_Message):
    """One line of trainer output meant for the user (plain stdout/stderr stay in the runner's log file)."""

    type: Literal["log"] = "log"
    level: LogLevel = "info"
    message: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Failed(_Message):
    """The attempt failed; always the last message."""

    type: Literal["failed"] = "failed"
    code: JobErrorCode
    message: str
    last_good_epoch: int | None = Field(None, ge=0)


class Finished(_Message):
    """The attempt ended without failing; always the last message."""

    type: Literal["finished"] = "finished"
    status: Literal["completed", "cancelled", "stopped_for_requeue"]
    best_epoch: int | None = Field(None, ge=1)
    best_metrics: Metrics = Field(default_factory=dict)
    last_epoch: int = Field(0, ge=0)


Message = Annotated[
    Started | Progress | CheckpointReady | Log | Failed | Finished,
    Field(discriminator="type"),
]
Terminal = Failed | Finished

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def encode(message: Message) -> bytes:
    """One JSON line, newline included."""
    return message.model_dump_json().encode() + b"\n"


def parse_message(line: bytes | str) -> Message:
    """Parse one line; raises `ValueError` (pydantic's `ValidationError`) when it is not a message."""
    return _ADAPTER.validate_json(line)
