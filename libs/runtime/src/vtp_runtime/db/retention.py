"""Pruning of the delivery tables, so `outbox` and `processed_events` do not grow forever.

A published outbox row is only kept for diagnostics. A processed-event id must be
kept for as long as a duplicate of that event can still arrive, that is longer than
the topics' retention (Kafka: 7 days by default), hence the longer default.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from vtp_runtime.periodic import periodic
from vtp_runtime.supervision import Background

_log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 3600.0
BATCH_ROWS = 10_000  # small deletes keep locks and WAL bursts short


_PRUNE = {
    # ctid: delete exactly the rows picked, whatever the table's key looks like.
    "outbox": "DELETE FROM outbox WHERE ctid IN (SELECT ctid FROM outbox WHERE published_at < :before LIMIT :n)",
    "processed_events": "DELETE FROM processed_events WHERE ctid IN "
    "(SELECT ctid FROM processed_events WHERE processed_at < :before LIMIT :n)",
}


async def prune_delivery_tables(engine: AsyncEngine, outbox_keep: timedelta, processed_keep: timedelta) -> int:
    """Delete published outbox rows and processed-event ids older than their windows; returns how many."""
    now = datetime.now(UTC)
    removed = 0
    for table, keep in (("outbox", outbox_keep), ("processed_events", processed_keep)):
        while True:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(_PRUNE[table]), {"before": now - keep, "n": BATCH_ROWS})
            count = int(getattr(result, "rowcount", 0) or 0)
            removed += count
            if count < BATCH_ROWS:
                break
    return removed


def delivery_table_pruner(engine: AsyncEngine, outbox_keep: timedelta, processed_keep: timedelta) -> Background:
    """A background task pruning once an hour (and once at start-up)."""

    async def prune() -> None:
        if removed := await prune_delivery_tables(engine, outbox_keep, processed_keep):
            _log.info("pruned %d outbox and processed-event rows", removed)

    return periodic("pruning the delivery tables", PRUNE_EVERY_SECONDS, prune)
