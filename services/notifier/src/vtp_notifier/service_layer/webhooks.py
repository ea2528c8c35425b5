"""Webhook deliveries created for newly stored feed events (placeholder until the dispatcher lands)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from vtp_notifier.domain.feed import FeedEvent


async def enqueue_deliveries(session: AsyncSession, events: Sequence[FeedEvent]) -> int:
    """Insert one pending delivery per (event, matching active subscription); returns how many."""
    return 0
