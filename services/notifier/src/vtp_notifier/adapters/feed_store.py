"""The feed table: store each platform event once, read a subscription's history back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_notifier.adapters.orm import feed_events
from vtp_notifier.domain.feed import FeedEvent, FeedFilter

_COLUMNS = (
    feed_events.c.seq,
    feed_events.c.event_id,
    feed_events.c.topic,
    feed_events.c.project_id,
    feed_events.c.subject,
    feed_events.c.job_id,
    feed_events.c.time,
    feed_events.c.data,
)


def _event(row: sa.Row[Any]) -> FeedEvent:
    return FeedEvent(
        seq=row.seq,
        event_id=row.event_id,
        topic=row.topic,
        project_id=row.project_id,
        subject=row.subject,
        job_id=row.job_id,
        time=row.time,
        data=row.data,
    )


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[FeedEvent]:
    """Insert events not stored yet (by event id); returns the new ones in feed order.

    Rows go in the order given, so events of one job keep their partition's order.
    A redelivered event hits the unique event id and is left out: that is the
    consumer's idempotency, with no separate processed-events claim needed.
    """
    if not rows:
        return []
    stmt = insert(feed_events).values(list(rows)).on_conflict_do_nothing(index_elements=["event_id"])
    result = await session.execute(stmt.returning(*_COLUMNS))
    return sorted((_event(row) for row in result), key=lambda e: e.seq)


async def seq_of(session: AsyncSession, project_id: UUID, event_id: str) -> int | None:
    """The feed position of one of the project's events (None if unknown or pruned)."""
    stmt = sa.select(feed_events.c.seq).where(
        feed_events.c.event_id == event_id, feed_events.c.project_id == project_id
    )
    return await session.scalar(stmt)


async def history(
    session: AsyncSession, wanted: FeedFilter, after_seq: int | None, limit: int
) -> tuple[list[FeedEvent], bool]:
    """The newest `limit` matching events after `after_seq`, oldest first, and whether more were cut off."""
    stmt = sa.select(*_COLUMNS).where(feed_events.c.project_id == wanted.project_id)
    if wanted.job_ids:
        stmt = stmt.where(feed_events.c.job_id.in_(sorted(wanted.job_ids)))
    if after_seq is not None:
        stmt = stmt.where(feed_events.c.seq > after_seq)
    rows = (await session.execute(stmt.order_by(feed_events.c.seq.desc()).limit(limit + 1))).all()
    truncated = len(rows) > limit
    return [_event(row) for row in reversed(rows[:limit])], truncated


async def prune(session: AsyncSession, received_before: datetime) -> int:
    """Forget events older than the retention window; returns how many."""
    result = await session.execute(sa.delete(feed_events).where(feed_events.c.received_at < received_before))
    return int(getattr(result, "rowcount", 0) or 0)
