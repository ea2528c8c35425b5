"""Datasets change by new head versions; snapshots freeze one version and its split forever."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class DatasetsError(Exception):
    """Base of the datasets domain's rule violations."""


class DatasetNotFound(DatasetsError):
    pass


class SnapshotNotFound(DatasetsError):
    pass


class DatasetNameTaken(DatasetsError):
    pass


class VersionTagTaken(DatasetsError):
    pass


class TaskNotInDataset(DatasetsError):
    pass


class TaskRequired(DatasetsError):
    """A download format needs one task and the snapshot has several: the caller chooses."""

    def __init__(self, message: str, tasks: list[str]) -> None:
        super().__init__(message)
        self.tasks = tasks


class LayoutNotPossible(DatasetsError):
    """The snapshot's annotations cannot be written in the requested download format."""


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DatasetVersion:
    """One state of a dataset's content; the newest is the head."""

    dataset_id: uuid.UUID
    number: int
    content_hash: str
    tasks: list[str]
    image_count: int
    size_bytes: int
    statistics: dict[str, Any]
    created_at: datetime = field(default_factory=now)


@dataclass
class Dataset:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    description: str | None
    head_version: int
    split_config: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    @staticmethod
    def new(project_id: uuid.UUID, name: str, description: str | None) -> Dataset:
        at = now()
        return Dataset(uuid.uuid4(), project_id, name, description, 1, None, at, at)

    def advance(self) -> int:
        """Make room for the next head version and return its number."""
        self.head_version += 1
        self.updated_at = now()
        return self.head_version

    def delete(self) -> None:
        if self.deleted_at is None:
            self.deleted_at = now()


@dataclass
class Snapshot:
    """An immutable, metadata-only freeze of one dataset version and its resolved split."""

    id: uuid.UUID
    dataset_id: uuid.UUID
    project_id: uuid.UUID
    version_tag: str
    version_number: int
    content_hash: str
    split_fingerprint: str
    split_config: dict[str, Any]
    tasks: list[str]
    image_count: int
    size_bytes: int
    statistics: dict[str, Any]
    created_at: datetime = field(default_factory=now)


def next_version_tag(existing: list[str]) -> str:
    """``v1``, ``v2``, ...: one past the highest automatic tag, skipping tags users took."""
    numbers = [int(t[1:]) for t in existing if re.fullmatch(r"v[0-9]+", t)]
    candidate = max(numbers, default=0) + 1
    while f"v{candidate}" in existing:
        candidate += 1
    return f"v{candidate}"
