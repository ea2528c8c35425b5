"""Handler of every public event: store it once, create its webhook deliveries, fan it out live."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_contracts import EventEnvelope
from vtp_contracts.catalog import spec_for_type
from vtp_notifier.adapters import feed_store
from vtp_notifier.domain.feed import FeedEvent
from vtp_notifier.service_layer.webhooks import enqueue_deliveries
from vtp_runtime.db.unit_of_work import SqlUnitOfWork

_log = logging.getLogger(__name__)


class Fanout(Protocol):
    async def publish(self, events: Sequence[FeedEvent]) -> None: ...


def feed_row(event: EventEnvelope[Any]) -> dict[str, Any]:
    """The feed table's row of one envelope."""
    data = event.data
    return {
        "event_id": event.id,
        "topic": spec_for_type(event.type).topic,
        "project_id": data.project_id,
        "subject": event.subject,
        "job_id": getattr(data, "job_id", None),
        "time": event.time,
        "data": data.model_dump(mode="json"),
    }


class FeedIngest:
    """Applies one consumed batch in one transaction, then tells live clients and the dispatcher."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fanout: Fanout,
        deliveries_created: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._fanout = fanout
        self._deliveries_created = deliveries_created

    async def __call__(self, events: list[EventEnvelope[Any]]) -> None:
        rows = [feed_row(e) for e in events]
        async with SqlUnitOfWork(self._sessions, "notifier") as uow:
            stored = await feed_store.insert_new(uow.session, rows)
            deliveries = await enqueue_deliveries(uow.session, stored)
            await uow.commit()
        if len(stored) < len(rows):
            _log.info("ignored %d redelivered events", len(rows) - len(stored))
        # Only after the commit: a live client never sees an event that history could not replay.
        await self._fanout.publish(stored)
        if deliveries:
            self._deliveries_created()
