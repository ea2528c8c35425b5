"""The jobs unit of work: one transaction with its repository and outbox."""

from __future__ import annotations

from typing import Self

from vtp_jobs.adapters.repository import JobRepository
from vtp_runtime.db.unit_of_work import SqlUnitOfWork


class JobsUnitOfWork(SqlUnitOfWork):
    repo: JobRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.repo = JobRepository(self.session)
        return self
