"""Dataset events."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from vtp_contracts.base import EventData, TaskType


class DatasetSnapshotCreated(EventData):
    """An immutable, metadata-only snapshot of a dataset exists; `dataset_id` is the key."""

    dataset_id: UUID
    project_id: UUID
    snapshot_id: UUID
    version_tag: str
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    image_count: int = Field(ge=0)
    task_types: list[TaskType]
    created_at: datetime
