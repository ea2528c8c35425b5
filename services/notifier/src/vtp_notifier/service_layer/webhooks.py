"""Webhook deliveries created for newly stored feed events, in the transaction that stores them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vtp_notifier.adapters.delivery_queue import insert_pending
from vtp_notifier.adapters.subscription_repository import SubscriptionRepository
from vtp_notifier.domain.feed import FeedEvent
from vtp_notifier.domain.webhooks import DeliveryStatus, Subscription, event_body

_ROWS_PER_INSERT = 1000  # stays far below PostgreSQL's limit of bind parameters per statement


async def enqueue_deliveries(session: AsyncSession, events: Sequence[FeedEvent]) -> int:
    """Insert one pending delivery per (event, matching subscription); returns how many.

    Subscriptions that are disabled still get deliveries: they wait, and go out once the
    subscription is enabled again. Deleted ones get none. The events are new (deduplicated
    by the caller), and a delivery already there for an event is skipped anyway.
    """
    if not events:
        return 0
    by_project: dict[uuid.UUID, list[Subscription]] = defaultdict(list)
    for sub in await SubscriptionRepository(session).of_projects({e.project_id for e in events}):
        by_project[sub.project_id].append(sub)
    if not by_project:
        return 0
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for event in events:
        body: str | None = None  # rendered once per event, shared by its subscriptions
        for sub in by_project.get(event.project_id, ()):
            if sub.matches(event):
                body = body or event_body(event)
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "subscription_id": sub.id,
                        "project_id": event.project_id,
                        "event_id": event.event_id,
                        "topic": event.topic,
                        "body": body,
                        "status": str(DeliveryStatus.PENDING),
                        "attempt_count": 0,
                        "next_attempt_at": now if sub.active else None,  # parked until enabled
                        "created_at": now,
                    }
                )
    inserted = 0
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        inserted += await insert_pending(session, rows[start : start + _ROWS_PER_INSERT])
    return inserted
