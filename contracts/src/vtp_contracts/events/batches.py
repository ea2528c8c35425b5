"""Batch inference events: the command a worker takes, its progress and its completion."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from vtp_contracts.base import EventData


class BatchRequested(EventData):
    """Command: predict every image of a batch. Taken by one inference replica of the `batchers` group.

    A batch whose worker stops renewing its lease is requested again with the next `attempt`;
    the new worker resumes after the last chunk the database recorded.
    """

    batch_id: UUID
    project_id: UUID
    deployment_id: UUID
    attempt: int = Field(ge=1)
    occurred_at: datetime


class BatchProgress(EventData):
    """A batch recorded one more chunk of results (or started)."""

    batch_id: UUID
    project_id: UUID
    deployment_id: UUID
    attempt: int = Field(ge=1)
    status: Literal["running"]
    total_images: int = Field(ge=0)
    processed_images: int = Field(ge=0, description="Images with a result row (predicted or refused).")
    failed_images: int = Field(ge=0, description="Images refused one by one (undecodable, too many pixels).")
    chunks_done: int = Field(ge=0)
    total_chunks: int = Field(ge=0)
    occurred_at: datetime


class BatchCompleted(EventData):
    """A batch ended: succeeded (results stored), failed, or cancelled."""

    batch_id: UUID
    project_id: UUID
    deployment_id: UUID
    status: Literal["succeeded", "failed", "cancelled"]
    total_images: int = Field(ge=0)
    processed_images: int = Field(ge=0)
    failed_images: int = Field(ge=0)
    results_uri: str | None = Field(None, description="The JSON Lines results in object storage (succeeded).")
    coco_uri: str | None = Field(None, description="COCO detection results (succeeded detect batches).")
    error_code: str | None = None
    message: str | None = None
    occurred_at: datetime
