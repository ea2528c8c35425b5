"""The delivery queue in PostgreSQL: insert, claim due rows under a lease, record outcomes.

State lives in the table, not in memory, so a delivery survives a restart; `FOR UPDATE SKIP
LOCKED` lets several replicas claim disjoint batches of the same queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_notifier.adapters.webhook_tables import webhook_attempts, webhook_deliveries, webhook_subscriptions
from vtp_notifier.domain.webhooks import AttemptResult, DeliveryStatus

subs, deliveries, attempts = webhook_subscriptions, webhook_deliveries, webhook_attempts
_ERROR_CHARS = 500


@dataclass(frozen=True)
class Claimed:
    """A delivery this replica holds until its lease ends, with what it needs to post it."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: str
    body: str
    attempt: int  # the number of the try about to be made
    url: str
    secret_ciphertext: bytes


@dataclass(frozen=True)
class Outcome:
    """One finished try and what it means for the delivery."""

    claimed: Claimed
    result: AttemptResult
    status: DeliveryStatus
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class FailureRun:
    """How one batch moves a subscription's count of consecutive failures."""

    subscription_id: uuid.UUID
    reset: bool  # a try succeeded: the count restarts from the failures after it
    failures: int


async def insert_pending(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert new deliveries; one already there for (subscription, event) is skipped."""
    if not rows:
        return 0
    stmt = (
        insert(deliveries)
        .values(list(rows))
        .on_conflict_do_nothing(
            index_elements=[deliveries.c.subscription_id, deliveries.c.event_id],
            index_where=deliveries.c.redelivery_of.is_(None),
        )
        .returning(deliveries.c.id)
    )
    return len((await session.execute(stmt)).all())


async def claim(session: AsyncSession, limit: int, lease: timedelta) -> list[Claimed]:
    """Lease up to `limit` due deliveries of active subscriptions (also ones whose lease ran out)."""
    due = (
        sa.select(deliveries.c.id)
        .join(subs, subs.c.id == deliveries.c.subscription_id)
        .where(
            deliveries.c.status.in_((DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)),
            deliveries.c.next_attempt_at <= sa.func.now(),
            subs.c.active.is_(True),
            subs.c.deleted_at.is_(None),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(of=deliveries, skip_locked=True)
    )
    stmt = (
        sa.update(deliveries)
        .where(deliveries.c.id.in_(due.scalar_subquery()))
        .values(status=DeliveryStatus.DELIVERING, next_attempt_at=sa.func.now() + lease)
        .returning(
            deliveries.c.id,
            deliveries.c.subscription_id,
            deliveries.c.event_id,
            deliveries.c.body,
            deliveries.c.attempt_count,
        )
    )
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    targets = {
        r.id: (r.url, r.secret_ciphertext)
        for r in await session.execute(
            sa.select(subs.c.id, subs.c.url, subs.c.secret_ciphertext).where(
                subs.c.id.in_({r.subscription_id for r in rows})
            )
        )
    }
    return [
        Claimed(r.id, r.subscription_id, r.event_id, r.body, r.attempt_count + 1, *targets[r.subscription_id])
        for r in rows
    ]


async def seconds_until_due(session: AsyncSession) -> float | None:
    """Seconds until the next delivery of an active subscription falls due (a lease's end counts
    too); None when none waits. The database's clock, like `claim`'s."""
    stmt = (
        sa.select(sa.func.extract("epoch", sa.func.min(deliveries.c.next_attempt_at) - sa.func.now()))
        .join(subs, subs.c.id == deliveries.c.subscription_id)
        .where(
            deliveries.c.status.in_((DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)),
            subs.c.active.is_(True),
            subs.c.deleted_at.is_(None),
        )
    )
    seconds = await session.scalar(stmt)
    return None if seconds is None else float(seconds)


async def record(session: AsyncSession, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Attempts, delivery states; a row no longer held (cancelled, re-claimed) is left alone."""
    if not outcomes:
        return
    await session.execute(
        insert(attempts).on_conflict_do_nothing(),
        [
            {
                "delivery_id": o.claimed.id,
                "attempt": o.claimed.attempt,
                "started_at": o.result.started_at,
                "latency_ms": o.result.latency_ms,
                "status_code": o.result.status_code,
                "error": _clip(o.result.error),
                "response_excerpt": o.result.response_excerpt,
            }
            for o in outcomes
        ],
    )
    done = {DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD}
    stmt = (
        sa.update(deliveries)
        .where(
            deliveries.c.id == sa.bindparam("b_id"),
            deliveries.c.status == DeliveryStatus.DELIVERING,
            deliveries.c.attempt_count == sa.bindparam("b_previous"),
        )
        .values(
            status=sa.bindparam("b_status"),
            attempt_count=sa.bindparam("b_attempt"),
            next_attempt_at=sa.bindparam("b_next", type_=sa.DateTime(timezone=True)),
            last_status_code=sa.bindparam("b_code", type_=sa.Integer),
            last_error=sa.bindparam("b_error", type_=sa.String),
            completed_at=sa.bindparam("b_completed", type_=sa.DateTime(timezone=True)),
            dead_lettered_at=sa.bindparam("b_dead", type_=sa.DateTime(timezone=True)),
        )
    )
    await session.execute(
        stmt,
        [
            {
                "b_id": o.claimed.id,
                "b_previous": o.claimed.attempt - 1,
                "b_status": str(o.status),
                "b_attempt": o.claimed.attempt,
                "b_next": o.next_attempt_at,
                "b_code": o.result.status_code,
                "b_error": _clip(o.result.error),
                "b_completed": now if o.status in done else None,
                "b_dead": now if o.status == DeliveryStatus.DEAD else None,
            }
            for o in outcomes
        ],
    )


async def count_failures(session: AsyncSession, runs: Sequence[FailureRun], disable_after: int, now: datetime) -> None:
    """Move each subscription's failure count; reaching `disable_after` disables it."""
    if not runs:
        return
    old = subs.c.consecutive_failures
    new = sa.case((sa.bindparam("b_reset", type_=sa.Boolean), 0), else_=old) + sa.bindparam("b_failures")
    tripped = sa.and_(subs.c.active.is_(True), new >= disable_after)
    reason = f"disabled after {disable_after} consecutive failed attempts"
    stmt = (
        sa.update(subs)
        .where(subs.c.id == sa.bindparam("b_id"))
        .values(
            consecutive_failures=new,
            active=sa.and_(subs.c.active, new < disable_after),
            disabled_reason=sa.case((tripped, reason), else_=subs.c.disabled_reason),
            updated_at=sa.case((tripped, now), else_=subs.c.updated_at),
        )
    )
    await session.execute(
        stmt, [{"b_id": r.subscription_id, "b_reset": r.reset, "b_failures": r.failures} for r in runs]
    )
    if any(r.failures for r in runs):
        await park(session, [r.subscription_id for r in runs if r.failures], only_inactive=True)


async def park(session: AsyncSession, subscription_ids: Sequence[uuid.UUID], *, only_inactive: bool = False) -> None:
    """Take the pending deliveries of disabled subscriptions off the schedule (no due time).

    Left due, they would be skipped by every claim, and a long backlog of a disabled receiver
    would slow down the claims of everybody else.
    """
    where = [
        deliveries.c.subscription_id.in_(subscription_ids),
        deliveries.c.status == DeliveryStatus.PENDING,
        deliveries.c.next_attempt_at.is_not(None),
    ]
    if only_inactive:
        inactive = sa.select(subs.c.id).where(subs.c.id.in_(subscription_ids), subs.c.active.is_(False))
        where.append(deliveries.c.subscription_id.in_(inactive.scalar_subquery()))
    await session.execute(sa.update(deliveries).where(*where).values(next_attempt_at=None))


async def resume(session: AsyncSession, subscription_id: uuid.UUID, now: datetime) -> None:
    """Make the parked deliveries of a subscription enabled again due now."""
    await session.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.status == DeliveryStatus.PENDING,
            deliveries.c.next_attempt_at.is_(None),
        )
        .values(next_attempt_at=now)
    )


def _clip(error: str | None) -> str | None:
    return error[:_ERROR_CHARS] if error else error
