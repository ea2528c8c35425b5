"""Batch inference jobs: a set of images predicted asynchronously, chunk by chunk."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({BatchStatus.SUCCEEDED, BatchStatus.FAILED, BatchStatus.CANCELLED})
UNFINISHED_WORK = frozenset({BatchStatus.FAILED, BatchStatus.CANCELLED})  # images left unprocessed
# An API key works with uploaded zips only: a snapshot batch is the project's dataset data (its
# source names the dataset, its rows the snapshot's files), read with a project token only.
KEY_SOURCE = "zip"


class BatchNotFound(Exception):
    """No such batch for the caller (another project's, or another key's, is not found either)."""


@dataclass(frozen=True)
class Reader:
    """Who reads or cancels batches: a project token sees every batch of its project; an API key
    (`key_id`) only the zip batches it submitted itself (or a key it was rotated from did)."""

    project_id: uuid.UUID
    key_id: uuid.UUID | None = None


class BatchFinished(Exception):
    """The batch already ended: it cannot be cancelled."""


@dataclass
class Batch:
    id: uuid.UUID
    project_id: uuid.UUID
    deployment_id: uuid.UUID
    key_id: uuid.UUID | None
    status: BatchStatus
    task_type: str
    source: dict[str, Any]
    params: dict[str, Any]
    total_images: int
    chunk_size: int
    created_at: datetime
    chunks_done: int = 0
    processed_images: int = 0
    failed_images: int = 0
    attempt: int = 1
    owner: str | None = None
    lease_until: datetime | None = None
    cancel_requested: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # W3C trace context of the submitting request: every attempt's command continues its trace.
    traceparent: str | None = None
    tracestate: str | None = None
    quota_windows: list[str] = field(default_factory=list)  # the quota windows its images were taken from
    quota_owed: int = 0  # images to give back to them, set once when the batch ends unfinished
    quota_returned: int = 0  # images given back

    @property
    def total_chunks(self) -> int:
        return chunk_count(self.total_images, self.chunk_size)

    def chunk_files(self, index: int) -> list[str]:
        """The archive entries of chunk `index`, in the batch's order."""
        files: list[str] = self.source["files"]
        return files[index * self.chunk_size : (index + 1) * self.chunk_size]


def unprocessed(batch: Batch) -> int:
    """Images a batch that ended failed or cancelled never processed: what its quotas get back."""
    if batch.status not in UNFINISHED_WORK or not batch.quota_windows:
        return 0
    return max(0, batch.total_images - batch.processed_images)


def chunk_count(total: int, size: int) -> int:
    return -(-total // size)
