"""The identity unit of work: one transaction with its repository."""

from __future__ import annotations

from typing import Self

from vtp_identity.adapters.repository import IdentityRepository
from vtp_runtime.db.unit_of_work import SqlUnitOfWork


class IdentityUnitOfWork(SqlUnitOfWork):
    repo: IdentityRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.repo = IdentityRepository(self.session)
        return self
