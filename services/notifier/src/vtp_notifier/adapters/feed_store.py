"""The feed table: store each platform event once, read a subscription's history back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
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


# One statement whatever the batch size (the rows travel as arrays), so it is compiled and
# prepared once instead of per batch: most of a small batch's cost was building the SQL.
_INSERT_NEW = sa.text(
    """
    INSERT INTO feed_events (event_id, topic, project_id, subject, job_id, time, data)
    SELECT e, t, p, s, j, tm, d::jsonb
    FROM unnest(:event_ids, :topics, :projects, :subjects, :jobs, :times, :datas) AS x(e, t, p, s, j, tm, d)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING seq, event_id
    """
).bindparams(
    sa.bindparam("event_ids", type_=ARRAY(sa.String)),
    sa.bindparam("topics", type_=ARRAY(sa.String)),
    sa.bindparam("projects", type_=ARRAY(PG_UUID(as_uuid=True))),
    sa.bindparam("subjects", type_=ARRAY(sa.String)),
    sa.bindparam("jobs", type_=ARRAY(PG_UUID(as_uuid=True))),
    sa.bindparam("times", type_=ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("datas", type_=ARRAY(sa.Text)),
)


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[FeedEvent]:
    """Insert events not stored yet (by event id); returns the new ones in feed order.

    Rows go in the order given, so events of one job keep their partition's order.
    A redelivered event hits the unique event id and is left out: that is the
    consumer's idempotency, with no separate processed-events claim needed.
    """
    if not rows:
        return []
    params = {
        "event_ids": [r["event_id"] for r in rows],
        "topics": [r["topic"] for r in rows],
        "projects": [r["project_id"] for r in rows],
        "subjects": [r["subject"] for r in rows],
        "jobs": [r["job_id"] for r in rows],
        "times": [r["time"] for r in rows],
        "datas": [json.dumps(r["data"]) for r in rows],
    }
    seqs = {row.event_id: row.seq for row in await session.execute(_INSERT_NEW, params)}
    new = [
        FeedEvent(
            seqs[r["event_id"]],
            r["event_id"],
            r["topic"],
            r["project_id"],
            r["subject"],
            r["job_id"],
            r["time"],
            r["data"],
        )
        for r in rows
        if r["event_id"] in seqs
    ]
    return sorted(new, key=lambda e: e.seq)


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
