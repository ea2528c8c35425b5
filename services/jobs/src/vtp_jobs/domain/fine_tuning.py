"""Fine-tuning: a new job starts from a checkpoint that an earlier job of the same project recorded.

The client names the earlier job, never an object: the checkpoint's URI and SHA-256 come from what
the platform itself recorded (`checkpoint.saved`), so a job can only ever load weights its own
project produced, and the runner can verify every byte before loading them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from vtp_jobs.domain.model import Job

CheckpointKind = Literal["best", "last"]


class CheckpointNotFound(Exception):
    """No usable checkpoint: no such job in the project, not finished, or no checkpoint of that kind."""

    code = "checkpoint_not_found"


class CheckpointIncompatible(Exception):
    """The checkpoint was trained for another framework or task than the new job's."""

    code = "checkpoint_incompatible"


@dataclass(frozen=True)
class CheckpointChoice:
    """What the client asked for: the `kind` checkpoint of job `job_id`."""

    job_id: uuid.UUID
    kind: CheckpointKind = "best"


def base_checkpoint(source: Job | None, choice: CheckpointChoice, framework: str, task_type: str) -> dict[str, Any]:
    """The recorded checkpoint a new job fine-tunes from (job, kind, epoch, uri, sha256, size).

    `source` is the earlier job as the caller's project sees it: None when it does not exist or
    belongs to another project, which must read exactly like a missing job.
    """
    if source is None:
        raise CheckpointNotFound(f"no job {choice.job_id} with a recorded checkpoint in this project")
    if not source.finished:
        raise CheckpointNotFound(f"job {source.id} is {source.status}; fine-tune from a finished job")
    info = source.checkpoints.get(choice.kind) or {}
    if not all(isinstance(info.get(k), t) for k, t in (("uri", str), ("sha256", str), ("size_bytes", int))):
        raise CheckpointNotFound(f"job {source.id} recorded no {choice.kind} checkpoint")
    if (source.framework, source.task_type) != (framework, task_type):
        raise CheckpointIncompatible(
            f"job {source.id} trained {source.framework} {source.task_type}, not {framework} {task_type}"
        )
    return {
        "job_id": str(source.id),
        "checkpoint": choice.kind,
        "epoch": info.get("epoch"),
        "uri": info["uri"],
        "sha256": info["sha256"],
        "size_bytes": info["size_bytes"],
    }
