"""Dataset, version and snapshot persistence on PostgreSQL (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_datasets.adapters.orm import dataset_versions, datasets, snapshots
from vtp_datasets.domain.model import Dataset, DatasetVersion, Snapshot, VersionTagTaken


class DatasetRepository:
    """Every read is scoped to one project: another project's rows do not exist here."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, dataset: Dataset) -> None:
        await self._session.execute(sa.insert(datasets).values(**vars(dataset)))

    async def save(self, dataset: Dataset) -> None:
        values = {k: v for k, v in vars(dataset).items() if k not in ("id", "project_id", "created_at")}
        await self._session.execute(sa.update(datasets).where(datasets.c.id == dataset.id).values(**values))

    async def get(self, project_id: uuid.UUID, dataset_id: uuid.UUID, *, lock: bool = False) -> Dataset | None:
        stmt = sa.select(datasets).where(
            datasets.c.id == dataset_id, datasets.c.project_id == project_id, datasets.c.deleted_at.is_(None)
        )
        if lock:
            stmt = stmt.with_for_update()
        row = (await self._session.execute(stmt)).first()
        return Dataset(**row._mapping) if row else None

    async def name_taken(self, project_id: uuid.UUID, name: str) -> bool:
        stmt = sa.select(sa.func.count()).where(
            datasets.c.project_id == project_id, datasets.c.name == name, datasets.c.deleted_at.is_(None)
        )
        return bool(await self._session.scalar(stmt))

    async def search(
        self, project_id: uuid.UUID, task: str | None, text: str | None, limit: int, offset: int
    ) -> tuple[list[tuple[Dataset, DatasetVersion]], int]:
        joined = datasets.join(
            dataset_versions,
            sa.and_(
                dataset_versions.c.dataset_id == datasets.c.id, dataset_versions.c.number == datasets.c.head_version
            ),
        )
        where: list[Any] = [datasets.c.project_id == project_id, datasets.c.deleted_at.is_(None)]
        if task:
            where.append(dataset_versions.c.tasks.contains([task]))
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(sa.or_(datasets.c.name.ilike(pattern), datasets.c.description.ilike(pattern)))
        total = await self._session.scalar(sa.select(sa.func.count()).select_from(joined).where(*where))
        stmt = (
            sa.select(datasets, dataset_versions)
            .select_from(joined)
            .where(*where)
            .order_by(datasets.c.created_at.desc(), datasets.c.id)
            .limit(limit)
            .offset(offset)
        )
        rows = (await self._session.execute(stmt)).all()
        return [(_dataset(r._mapping), _version(r._mapping)) for r in rows], int(total or 0)

    async def add_version(self, version: DatasetVersion) -> None:
        await self._session.execute(sa.insert(dataset_versions).values(**vars(version)))

    async def version(self, dataset_id: uuid.UUID, number: int) -> DatasetVersion:
        stmt = sa.select(dataset_versions).where(
            dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.number == number
        )
        return DatasetVersion(**(await self._session.execute(stmt)).one()._mapping)

    async def add_snapshot(self, snapshot: Snapshot) -> None:
        try:
            async with self._session.begin_nested():
                await self._session.execute(sa.insert(snapshots).values(**vars(snapshot)))
        except IntegrityError as exc:  # the unique constraints settle concurrent creations
            raise VersionTagTaken(snapshot.version_tag) from exc

    async def snapshot(
        self, project_id: uuid.UUID, dataset_id: uuid.UUID | None, snapshot_id: uuid.UUID
    ) -> Snapshot | None:
        """The project's snapshot; of that dataset, or of any (None: looked up by its id alone)."""
        stmt = sa.select(snapshots).where(snapshots.c.id == snapshot_id, snapshots.c.project_id == project_id)
        if dataset_id is not None:
            stmt = stmt.where(snapshots.c.dataset_id == dataset_id)
        row = (await self._session.execute(stmt)).first()
        return Snapshot(**row._mapping) if row else None

    async def snapshot_by_content(self, dataset_id: uuid.UUID, content_hash: str, split_fp: str) -> Snapshot | None:
        stmt = sa.select(snapshots).where(
            snapshots.c.dataset_id == dataset_id,
            snapshots.c.content_hash == content_hash,
            snapshots.c.split_fingerprint == split_fp,
        )
        row = (await self._session.execute(stmt)).first()
        return Snapshot(**row._mapping) if row else None

    async def snapshots(self, project_id: uuid.UUID, dataset_id: uuid.UUID) -> list[Snapshot]:
        stmt = (
            sa.select(snapshots)
            .where(snapshots.c.dataset_id == dataset_id, snapshots.c.project_id == project_id)
            .order_by(snapshots.c.created_at, snapshots.c.version_tag)
        )
        return [Snapshot(**r._mapping) for r in (await self._session.execute(stmt)).all()]

    async def snapshot_owner(self, project_id: uuid.UUID, dataset_id: uuid.UUID) -> bool:
        """True when the dataset exists in the project, deleted or not (snapshots outlive it)."""
        stmt = sa.select(sa.func.count()).where(datasets.c.id == dataset_id, datasets.c.project_id == project_id)
        return bool(await self._session.scalar(stmt))


def _dataset(row: Any) -> Dataset:
    return Dataset(**{c.name: row[c] for c in datasets.c})


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(**{c.name: row[c] for c in dataset_versions.c})
