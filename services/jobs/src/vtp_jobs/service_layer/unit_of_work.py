"""The jobs unit of work: one transaction with its repositories and outbox."""

from __future__ import annotations

from typing import Self

from vtp_jobs.adapters.batch_repository import JobBatchRepository
from vtp_jobs.adapters.repository import JobRepository
from vtp_runtime.db.unit_of_work import SqlUnitOfWork


class JobsUnitOfWork(SqlUnitOfWork):
    repo: JobRepository
    batch: JobBatchRepository  # set-based reads and writes for the event projection

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.repo = JobRepository(self.session)
        self.batch = JobBatchRepository(self.session)
        return self
