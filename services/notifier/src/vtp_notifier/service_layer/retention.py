"""Forget feed events older than the retention window, so the table does not grow forever."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_notifier.adapters import feed_store
from vtp_runtime.periodic import periodic
from vtp_runtime.supervision import Background

_log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 600.0


def feed_pruner(sessions: async_sessionmaker[AsyncSession], retention_hours: float) -> Background:
    async def prune() -> None:
        async with sessions() as session, session.begin():
            cutoff = datetime.now(UTC) - timedelta(hours=retention_hours)
            if removed := await feed_store.prune(session, cutoff):
                _log.info("pruned %d feed events older than %s", removed, cutoff.isoformat())

    return periodic("feed pruning", PRUNE_EVERY_SECONDS, prune)
