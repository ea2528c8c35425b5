"""The inference unit of work: one transaction with its repository and outbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from vtp_inference.adapters.repository import DeploymentRepository
from vtp_runtime.db.unit_of_work import SqlUnitOfWork


class InferenceUnitOfWork(SqlUnitOfWork):
    repo: DeploymentRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.repo = DeploymentRepository(self.session)
        return self


NewUow = Callable[[], InferenceUnitOfWork]
