"""Transactional outbox: stage events in the caller's transaction; a relay publishes them."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from vtp_contracts import EventData, TopicSpec
from vtp_runtime import failpoints
from vtp_runtime.db.delivery_tables import add_delivery_tables
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher, PublishError
from vtp_runtime.supervision import report_failure, report_ok

_log = logging.getLogger(__name__)
OUTBOX, PROCESSED_EVENTS = add_delivery_tables(sa.MetaData())

# One relay per database publishes at a time; the others wait. This keeps the
# outbox order (and so each aggregate's order) without coordinating batches.
_RELAY_LOCK_KEY = 0x767470_0B0C


async def stage_event(session: AsyncSession, spec: TopicSpec, data: EventData, source: str) -> OutboundEvent:
    """Write an event into the outbox as part of `session`'s open transaction."""
    event = make_event(spec, data, source)
    await session.execute(
        sa.insert(OUTBOX).values(
            event_id=event.id, topic=event.topic, key=event.key, headers=event.headers, payload=event.value
        )
    )
    return event


class OutboxRelay:
    """Moves committed outbox rows to Kafka, oldest first, at least once.

    A crash between publishing and stamping ``published_at`` republishes the
    batch on restart; consumers deduplicate by event id, so it is applied once.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: KafkaEventPublisher,
        *,
        poll_seconds: float = 0.2,
        idle_poll_seconds: float | None = None,
        batch_size: int = 200,
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._poll = poll_seconds
        # With nothing to publish the poll interval doubles up to this: a local commit wakes the
        # relay anyway, so polling only catches other processes' commits, and costs CPU when idle.
        self._idle_poll = max(poll_seconds, idle_poll_seconds or poll_seconds)
        self._batch = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Skip the rest of the poll wait (called after a local commit staged events)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        async with self._engine.begin() as conn:
            if not await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_RELAY_LOCK_KEY))):
                return 0
            rows = (
                await conn.execute(
                    sa.select(
                        OUTBOX.c.id, OUTBOX.c.event_id, OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.headers, OUTBOX.c.payload
                    )
                    .where(OUTBOX.c.published_at.is_(None))
                    .order_by(OUTBOX.c.id)
                    .limit(self._batch)
                )
            ).all()
            if not rows:
                return 0
            failpoints.hit("outbox.before_publish")
            await self._publisher.publish(
                [OutboundEvent(r.event_id, r.topic, r.key, dict(r.headers), bytes(r.payload)) for r in rows]
            )
            failpoints.hit("outbox.after_publish")
            await _mark_published(conn, [r.id for r in rows])
            return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set.

        Errors of the database or broker are logged and retried with backoff, and reported to
        the supervisor (health turns 503 while they last); anything else ends this run and the
        supervisor restarts it.
        """
        backoff = idle = self._poll
        while not stop.is_set():
            self._wake.clear()  # before the query: a commit during it wakes the wait below at once
            try:
                published = await self.relay_once()
                backoff = self._poll
                report_ok()
            except (PublishError, OSError, sa.exc.SQLAlchemyError) as exc:
                _log.warning("outbox relay error, retrying in %.1fs: %s", backoff, exc)
                report_failure(exc)
                published = 0
                backoff = min(backoff * 2, 5.0)
            if published:
                idle = self._poll
                continue  # drain the backlog before sleeping
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
            await asyncio.wait(waiters, timeout=max(backoff, idle), return_when=asyncio.FIRST_COMPLETED)
            for task in waiters:
                task.cancel()
            idle = self._poll if self._wake.is_set() else min(idle * 2, self._idle_poll)


async def _mark_published(conn: AsyncConnection, ids: list[int]) -> None:
    await conn.execute(sa.update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(published_at=sa.func.now()))


async def pending_count(engine: AsyncEngine) -> int:
    """How many committed events still wait for the relay (for health and tests)."""
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).where(OUTBOX.c.published_at.is_(None))) or 0)
