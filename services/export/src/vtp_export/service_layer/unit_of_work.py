"""The export unit of work: one transaction with its repository and outbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from vtp_export.adapters.repository import ExportRepository
from vtp_runtime.db.unit_of_work import SqlUnitOfWork


class ExportUnitOfWork(SqlUnitOfWork):
    repo: ExportRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.repo = ExportRepository(self.session)
        return self


NewUow = Callable[[], ExportUnitOfWork]
