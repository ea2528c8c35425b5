"""The export aggregate: a checkpoint turned into one format, content-addressed, with its parity report."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


STAGES = ("exporting", "validating", "packaging")


class ExportNotFound(Exception):
    """No such export in the caller's project (or it was deleted)."""


class ExportNotReady(Exception):
    """The export has no package (it has not succeeded)."""


class ParityNotPassed(ExportNotReady):
    """A succeeded export whose parity was not run (CoreML off macOS) cannot be the job's default."""


def content_key(checkpoint_sha256: str, fmt: str, options: dict[str, Any]) -> str:
    """What makes two export requests the same export: checkpoint bytes, format, normalised options."""
    canonical = json.dumps({"checkpoint": checkpoint_sha256, "format": fmt, "options": options}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Export:
    id: uuid.UUID
    project_id: uuid.UUID
    job_id: uuid.UUID
    version: int
    format: str
    options: dict[str, Any]
    task_type: str
    checkpoint: dict[str, Any]  # uri, sha256, size_bytes, kind, epoch
    source: dict[str, Any]  # snapshot_id, snapshot_content_hash, split_fingerprint, split
    content_key: str
    created_at: datetime
    status: Status = Status.QUEUED
    stage: str | None = None
    attempt: int = 1
    is_default: bool = False
    artifact: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    package_metadata: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in (Status.SUCCEEDED, Status.FAILED)

    @property
    def parity_passed(self) -> bool:
        """The parity gate ran and passed (a CoreML export off macOS succeeds with it `not_run`)."""
        return bool(self.parity and self.parity.get("passed"))
