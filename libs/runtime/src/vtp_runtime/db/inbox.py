"""Idempotent consumption: claim an event id inside the transaction that applies it."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
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


async def claim_events(session: AsyncSession, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """The ids among `event_ids` that `consumer` sees for the first time, claimed in one statement.

    Like :func:`claim_event` for a whole batch: the ids travel as one array
    parameter, so the statement is the same whatever the batch size.
    """
    if not event_ids:
        return set()
    ids = sa.func.unnest(sa.bindparam("event_ids", list(event_ids), type_=ARRAY(sa.String)))
    stmt = (
        insert(PROCESSED_EVENTS)
        .from_select(["consumer", "event_id"], sa.select(sa.literal(consumer, sa.String), ids))
        .on_conflict_do_nothing()
        .returning(PROCESSED_EVENTS.c.event_id)
    )
    return set((await session.scalars(stmt)).all())


async def processed_count(session: AsyncSession, consumer: str) -> int:
    """Events `consumer` has applied (diagnostics)."""
    stmt = sa.select(sa.func.count()).where(PROCESSED_EVENTS.c.consumer == consumer)
    return int(await session.scalar(stmt) or 0)
