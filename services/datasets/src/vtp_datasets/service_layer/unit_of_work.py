"""The datasets unit of work: one transaction with its repository and outbox."""

from __future__ import annotations

from typing import Self

from vtp_datasets.adapters.leases import LeaseRepository
from vtp_datasets.adapters.repository import DatasetRepository
from vtp_runtime.db.unit_of_work import SqlUnitOfWork


class DatasetsUnitOfWork(SqlUnitOfWork):
    repo: DatasetRepository
    leases: LeaseRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.repo = DatasetRepository(self.session)
        self.leases = LeaseRepository(self.session)
        return self
