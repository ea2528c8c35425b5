"""Commands and queries on datasets, splits and snapshots. Every one is project-scoped."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp_contracts.catalog import DATASET_SNAPSHOT_CREATED
from vtp_contracts.events.datasets import DatasetSnapshotCreated
from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.domain.model import (
    Dataset,
    DatasetNameTaken,
    DatasetNotFound,
    DatasetVersion,
    Snapshot,
    SnapshotNotFound,
    next_version_tag,
)
from vtp_datasets.service_layer.blob_gc import blob_lease
from vtp_datasets.service_layer.content import Content, fingerprint, load_content
from vtp_datasets.service_layer.ingest import BaseVersion
from vtp_datasets.service_layer.unit_of_work import DatasetsUnitOfWork
from vtp_datasets.service_layer.uploads import ingested
from vtp_dice.archive import ArchiveLimits
from vtp_dice.format import TRAINER_TASK
from vtp_dice.manifest import blob_key
from vtp_dice.splits import DEFAULT_SPLIT, SplitConfig, effective
from vtp_runtime.auth import Principal

_log = logging.getLogger(__name__)


@dataclass
class Deps:
    """What the handlers need from the outside world (swapped for fakes in tests)."""

    new_uow: Callable[[], DatasetsUnitOfWork]
    blobs: BlobStore
    limits: ArchiveLimits
    probe_workers: int


def split_config_of(dataset: Dataset) -> SplitConfig:
    return effective(None, SplitConfig.from_dict(dataset.split_config) if dataset.split_config else None)


def _ingested(
    deps: Deps, upload: Path, base: BaseVersion, split: SplitConfig, fmt: str
) -> AbstractAsyncContextManager[tuple[Content, dict[str, Any]]]:
    return ingested(deps.new_uow, deps.blobs, deps.limits, deps.probe_workers, upload, base, split, fmt)


def _version(dataset_id: uuid.UUID, number: int, content: Content, stats: dict[str, Any]) -> DatasetVersion:
    manifest = content.manifest
    return DatasetVersion(
        dataset_id,
        number,
        manifest.content_hash(),
        list(manifest.tasks),
        len(manifest.images),
        manifest.size_bytes,
        stats,
    )


async def create_dataset(
    deps: Deps, caller: Principal, name: str, description: str | None, upload: Path, fmt: str = "auto"
) -> Any:
    async with deps.new_uow() as uow:
        if await uow.repo.name_taken(caller.project_id, name):
            raise DatasetNameTaken(name)
    dataset = Dataset.new(caller.project_id, name, description)
    async with _ingested(deps, upload, BaseVersion(), DEFAULT_SPLIT, fmt) as (content, stats):
        version = _version(dataset.id, 1, content, stats)
        async with deps.new_uow() as uow:
            if await uow.repo.name_taken(caller.project_id, name):  # lost a race with a concurrent upload
                raise DatasetNameTaken(name)
            await uow.repo.add(dataset)
            await uow.repo.add_version(version)
            await uow.commit()
    return dataset, version


async def add_version(deps: Deps, caller: Principal, dataset_id: uuid.UUID, upload: Path, fmt: str = "auto") -> Any:
    """More images or another task's annotations: a new head version; snapshots are untouched."""
    dataset, head = await get_dataset(deps, caller, dataset_id)
    base = (await load_content(deps.blobs, head.content_hash)).as_base()
    async with (
        _ingested(deps, upload, base, split_config_of(dataset), fmt) as (content, stats),
        deps.new_uow() as uow,
    ):
        current = await uow.repo.get(caller.project_id, dataset_id, lock=True)
        if current is None:
            raise DatasetNotFound(str(dataset_id))
        version = _version(dataset_id, current.advance(), content, stats)
        await uow.repo.add_version(version)
        await uow.repo.save(current)
        await uow.commit()
    return current, version


async def get_dataset(deps: Deps, caller: Principal, dataset_id: uuid.UUID) -> tuple[Dataset, DatasetVersion]:
    async with deps.new_uow() as uow:
        dataset = await uow.repo.get(caller.project_id, dataset_id)
        if dataset is None:
            raise DatasetNotFound(str(dataset_id))
        return dataset, await uow.repo.version(dataset.id, dataset.head_version)


async def list_datasets(
    deps: Deps, caller: Principal, task: str | None, search: str | None, limit: int, offset: int
) -> tuple[list[tuple[Dataset, DatasetVersion]], int]:
    async with deps.new_uow() as uow:
        return await uow.repo.search(caller.project_id, task, search, limit, offset)


async def delete_dataset(deps: Deps, caller: Principal, dataset_id: uuid.UUID) -> None:
    async with deps.new_uow() as uow:
        dataset = await uow.repo.get(caller.project_id, dataset_id, lock=True)
        if dataset is None:
            raise DatasetNotFound(str(dataset_id))
        dataset.delete()
        await uow.repo.save(dataset)
        await uow.commit()


async def put_split(deps: Deps, caller: Principal, dataset_id: uuid.UUID, config: SplitConfig) -> dict[str, int]:
    """Store the dataset's split configuration; returns the resulting split counts."""
    _, head = await get_dataset(deps, caller, dataset_id)
    content = await load_content(deps.blobs, head.content_hash)
    counts = _counts(content.resolve_splits(config))  # raises SplitError (manual with gaps) before storing
    async with deps.new_uow() as uow:
        current = await uow.repo.get(caller.project_id, dataset_id, lock=True)
        if current is None:
            raise DatasetNotFound(str(dataset_id))
        current.split_config = config.to_dict()
        await uow.repo.save(current)
        await uow.commit()
    return counts


async def split_counts(deps: Deps, caller: Principal, dataset_id: uuid.UUID) -> tuple[SplitConfig, dict[str, int]]:
    dataset, head = await get_dataset(deps, caller, dataset_id)
    config = split_config_of(dataset)
    content = await load_content(deps.blobs, head.content_hash)
    return config, _counts(content.resolve_splits(config))


def _counts(assignment: dict[str, str]) -> dict[str, int]:
    counts = {"train": 0, "val": 0, "test": 0}
    for split in assignment.values():
        counts[split] += 1
    return counts


async def create_snapshot(
    deps: Deps, caller: Principal, dataset_id: uuid.UUID, version_tag: str | None
) -> tuple[Snapshot, bool]:
    """Freeze the head version and its resolved split; the same content returns the same snapshot."""
    dataset, head = await get_dataset(deps, caller, dataset_id)
    config = split_config_of(dataset)
    content = await load_content(deps.blobs, head.content_hash)
    assignment = content.resolve_splits(config)
    split_fp = fingerprint(assignment)
    async with blob_lease(deps.new_uow, [blob_key(split_fp)]), deps.new_uow() as uow:
        await deps.blobs.put_json(assignment)
        existing = await uow.repo.snapshot_by_content(dataset_id, head.content_hash, split_fp)
        if existing is not None:
            return existing, False
        tags = [s.version_tag for s in await uow.repo.snapshots(caller.project_id, dataset_id)]
        snapshot = Snapshot(
            uuid.uuid4(),
            dataset_id,
            caller.project_id,
            version_tag or next_version_tag(tags),
            head.number,
            head.content_hash,
            split_fp,
            config.to_dict(),
            head.tasks,
            head.image_count,
            head.size_bytes,
            {**head.statistics, "split_distribution": _counts(assignment)},
        )
        await uow.repo.add_snapshot(snapshot)
        await uow.publish(
            DATASET_SNAPSHOT_CREATED,
            DatasetSnapshotCreated(
                dataset_id=dataset_id,
                project_id=caller.project_id,
                snapshot_id=snapshot.id,
                version_tag=snapshot.version_tag,
                content_hash=snapshot.content_hash,
                image_count=snapshot.image_count,
                task_types=[TRAINER_TASK[t] for t in snapshot.tasks],  # type: ignore[index]
                created_at=snapshot.created_at,
            ),
        )
        await uow.commit()
    return snapshot, True


async def list_snapshots(deps: Deps, caller: Principal, dataset_id: uuid.UUID) -> list[Snapshot]:
    async with deps.new_uow() as uow:
        if not await uow.repo.snapshot_owner(caller.project_id, dataset_id):
            raise DatasetNotFound(str(dataset_id))
        return await uow.repo.snapshots(caller.project_id, dataset_id)


async def get_snapshot(deps: Deps, caller: Principal, dataset_id: uuid.UUID | None, snapshot_id: uuid.UUID) -> Snapshot:
    """The caller's project's snapshot (of that dataset, or by its id alone when `dataset_id` is None)."""
    async with deps.new_uow() as uow:
        snapshot = await uow.repo.snapshot(caller.project_id, dataset_id, snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(str(snapshot_id))
    return snapshot


async def snapshot_content(
    deps: Deps, caller: Principal, dataset_id: uuid.UUID, snapshot_id: uuid.UUID
) -> tuple[Snapshot, Content, dict[str, str]]:
    """A snapshot with its content and frozen split assignment (for downloads and comparisons)."""
    snapshot = await get_snapshot(deps, caller, dataset_id, snapshot_id)
    content = await load_content(deps.blobs, snapshot.content_hash)
    assignment: dict[str, str] = await deps.blobs.get_json(snapshot.split_fingerprint)
    if fingerprint(assignment) != snapshot.split_fingerprint:
        raise RuntimeError("stored split assignment does not match its fingerprint")
    return snapshot, content, assignment
