"""Usage reports: a deployment's or the project's cells merged into one series, plus a breakdown."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from vtp_inference.domain.model import DeploymentNotFound
from vtp_inference.domain.usage import Cell, CellKey
from vtp_inference.domain.usage_query import UsageQuery
from vtp_inference.service_layer.metering import UsageStore
from vtp_inference.service_layer.unit_of_work import NewUow


@dataclass
class UsageReport:
    query: UsageQuery
    series: list[tuple[datetime, Cell]]
    total: Cell
    by: dict[uuid.UUID | None, Cell] = field(default_factory=dict)  # per key, or per deployment


def _report(query: UsageQuery, rows: list[tuple[CellKey, Cell]], by_deployment: bool) -> UsageReport:
    periods: dict[datetime, Cell] = {}
    total, by = Cell(), dict[uuid.UUID | None, Cell]()
    for key, cell in rows:
        periods.setdefault(key.start, Cell()).merge(cell)
        by.setdefault(key.deployment_id if by_deployment else key.key_id, Cell()).merge(cell)
        total.merge(cell)
    return UsageReport(query, sorted(periods.items()), total, by)


async def deployment_usage(
    new_uow: NewUow, store: UsageStore, project_id: uuid.UUID, deployment_id: uuid.UUID, query: UsageQuery
) -> UsageReport:
    """One deployment of the caller's project (DeploymentNotFound otherwise, also another project's)."""
    async with new_uow() as uow:
        if await uow.repo.get(project_id, deployment_id) is None:
            raise DeploymentNotFound(str(deployment_id))
    rows = await store.read(project_id, query.granularity, query.start, query.end, deployment_id, query.key_id)
    return _report(query, rows, by_deployment=False)


async def project_usage(
    store: UsageStore, project_id: uuid.UUID, query: UsageQuery, visible: Callable[[uuid.UUID], bool] | None = None
) -> UsageReport:
    """Every deployment of the caller's project (deleted ones too: their usage happened), or only
    those `visible` admits (an API key's deployments)."""
    rows = await store.read(project_id, query.granularity, query.start, query.end, None, query.key_id)
    if visible is not None:
        rows = [(key, cell) for key, cell in rows if visible(key.deployment_id)]
    return _report(query, rows, by_deployment=True)
