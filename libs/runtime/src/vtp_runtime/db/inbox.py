"""Idempotent consumption: claim an event id inside the transaction that applies it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_runtime.db.outbox import PROCESSED_EVENTS


async def claim_event(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """True the first time `consumer` sees `event_id`; False for a duplicate.

    The claim commits or rolls back together with the caller's changes, so an
    event is applied exactly once even when Kafka delivers it again.
    """
    result = await session.execute(
        insert(PROCESSED_EVENTS)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(PROCESSED_EVENTS.c.event_id)
    )
    return result.first() is not None


async def processed_count(session: AsyncSession, consumer: str) -> int:
    """Events `consumer` has applied (diagnostics)."""
    stmt = sa.select(sa.func.count()).where(PROCESSED_EVENTS.c.consumer == consumer)
    return int(await session.scalar(stmt) or 0)
