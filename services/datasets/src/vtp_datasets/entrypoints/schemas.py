"""Request and response bodies of the datasets REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from vtp_datasets.domain.model import TAG_PATTERN, Dataset, DatasetVersion, Snapshot


class DatasetOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    head_version: int
    content_hash: str
    tasks: dict[str, Any] = Field(description="Per task: classes with annotation counts, images, annotations.")
    image_count: int
    size_bytes: int
    split_counts: dict[str, int]
    statistics: dict[str, Any] = Field(description="Recomputed on upload; the file's own statistics are ignored.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def of(dataset: Dataset, version: DatasetVersion) -> DatasetOut:
        stats = version.statistics
        return DatasetOut(
            id=dataset.id,
            name=dataset.name,
            description=dataset.description,
            head_version=version.number,
            content_hash=version.content_hash,
            tasks=stats.get("tasks", {}),
            image_count=version.image_count,
            size_bytes=version.size_bytes,
            split_counts=stats.get("split_distribution", {}),
            statistics=stats,
            created_at=dataset.created_at,
            updated_at=dataset.updated_at,
        )


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    total: int
    limit: int
    offset: int


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["auto", "manual", "partial"]
    # Strict: `true` is not a fraction and `false` not a seed (pydantic would coerce them).
    train: StrictFloat = Field(0.8, ge=0, le=1)
    val: StrictFloat = Field(0.2, ge=0, le=1)
    test: StrictFloat = Field(0.0, ge=0, le=1)
    seed: StrictInt = 42
    assignments: dict[str, Literal["train", "val", "test"]] = Field(
        default_factory=dict, description="file_name -> split, for manual and partial."
    )


class SplitOut(BaseModel):
    method: str
    train: float
    val: float
    test: float
    seed: int
    assignments: dict[str, str]
    counts: dict[str, int]


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version_tag: str | None = Field(None, pattern=TAG_PATTERN.pattern, description="Unique per dataset; v1, v2, ...")


class SnapshotOut(BaseModel):
    id: uuid.UUID
    dataset_id: uuid.UUID
    version_tag: str
    dataset_version: int
    content_hash: str
    split_fingerprint: str
    split_config: dict[str, Any]
    tasks: list[str]
    image_count: int
    size_bytes: int
    statistics: dict[str, Any]
    created_at: datetime

    @staticmethod
    def of(snapshot: Snapshot) -> SnapshotOut:
        return SnapshotOut(
            id=snapshot.id,
            dataset_id=snapshot.dataset_id,
            version_tag=snapshot.version_tag,
            dataset_version=snapshot.version_number,
            content_hash=snapshot.content_hash,
            split_fingerprint=snapshot.split_fingerprint,
            split_config=snapshot.split_config,
            tasks=snapshot.tasks,
            image_count=snapshot.image_count,
            size_bytes=snapshot.size_bytes,
            statistics=snapshot.statistics,
            created_at=snapshot.created_at,
        )
