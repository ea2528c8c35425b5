"""Forget feed events older than the retention window, so the table does not grow forever."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_notifier.adapters import feed_store
from vtp_runtime.http.app import BackgroundTask

_log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 600.0


def feed_pruner(sessions: async_sessionmaker[AsyncSession], retention_hours: float) -> BackgroundTask:
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with sessions() as session, session.begin():
                    cutoff = datetime.now(UTC) - timedelta(hours=retention_hours)
                    if removed := await feed_store.prune(session, cutoff):
                        _log.info("pruned %d feed events older than %s", removed, cutoff.isoformat())
            except Exception:  # the next round retries
                _log.exception("feed pruning failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PRUNE_EVERY_SECONDS)

    return run
