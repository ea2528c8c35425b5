"""Subscriptions and their delivery log on PostgreSQL (SQLAlchemy Core), scoped to a project."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_notifier.adapters.webhook_tables import webhook_attempts, webhook_deliveries, webhook_subscriptions
from vtp_notifier.domain.webhooks import DeliveryStatus, Subscription

subs, deliveries, attempts = webhook_subscriptions, webhook_deliveries, webhook_attempts
_SUB_COLUMNS = [c for c in subs.c if c.name not in ("secret_ciphertext", "deleted_at")]
_OPEN = (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)


def _subscription(row: Any) -> Subscription:
    values = dict(row._mapping)
    values["event_types"] = frozenset(values["event_types"])
    values["job_ids"] = frozenset(values["job_ids"])
    return Subscription(**values)


def _values(sub: Subscription) -> dict[str, Any]:
    values = dict(vars(sub))
    values["event_types"] = sorted(sub.event_types)
    values["job_ids"] = sorted(sub.job_ids)
    return values


class SubscriptionRepository:
    """Deleted subscriptions are kept (soft delete) but never found again."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, sub: Subscription, secret_ciphertext: bytes) -> None:
        await self._session.execute(sa.insert(subs).values(**_values(sub), secret_ciphertext=secret_ciphertext))

    async def save(self, sub: Subscription) -> None:
        values = {k: v for k, v in _values(sub).items() if k not in ("id", "project_id", "created_at")}
        await self._session.execute(sa.update(subs).where(subs.c.id == sub.id).values(**values))

    async def set_secret(self, subscription_id: uuid.UUID, secret_ciphertext: bytes) -> None:
        stmt = sa.update(subs).where(subs.c.id == subscription_id).values(secret_ciphertext=secret_ciphertext)
        await self._session.execute(stmt)

    async def get(
        self, project_id: uuid.UUID, subscription_id: uuid.UUID, *, lock: bool = False
    ) -> Subscription | None:
        stmt = sa.select(*_SUB_COLUMNS).where(
            subs.c.id == subscription_id, subs.c.project_id == project_id, subs.c.deleted_at.is_(None)
        )
        row = (await self._session.execute(stmt.with_for_update() if lock else stmt)).first()
        return _subscription(row) if row else None

    async def search(self, project_id: uuid.UUID, limit: int, offset: int) -> tuple[list[Subscription], int]:
        where = [subs.c.project_id == project_id, subs.c.deleted_at.is_(None)]
        total = await self._session.scalar(sa.select(sa.func.count()).select_from(subs).where(*where))
        stmt = sa.select(*_SUB_COLUMNS).where(*where).order_by(subs.c.created_at, subs.c.id).limit(limit).offset(offset)
        return [_subscription(r) for r in (await self._session.execute(stmt)).all()], int(total or 0)

    async def of_projects(self, project_ids: Iterable[uuid.UUID]) -> list[Subscription]:
        """Every live subscription of these projects, active or not (inactive ones queue up)."""
        stmt = sa.select(*_SUB_COLUMNS).where(subs.c.project_id.in_(set(project_ids)), subs.c.deleted_at.is_(None))
        return [_subscription(r) for r in (await self._session.execute(stmt)).all()]

    async def delete(self, subscription_id: uuid.UUID, now: datetime) -> None:
        """Soft-delete, and cancel what it still had to deliver (an in-flight try is not recorded)."""
        await self._session.execute(
            sa.update(subs).where(subs.c.id == subscription_id).values(deleted_at=now, active=False, updated_at=now)
        )
        await self._session.execute(
            sa.update(deliveries)
            .where(deliveries.c.subscription_id == subscription_id, deliveries.c.status.in_(_OPEN))
            .values(status=DeliveryStatus.CANCELLED, next_attempt_at=None, completed_at=now)
        )

    # -- the delivery log ---------------------------------------------------------------------
    async def deliveries(
        self, subscription_id: uuid.UUID, status: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of deliveries, newest first, each with its attempts."""
        where = [deliveries.c.subscription_id == subscription_id]
        if status:
            where.append(deliveries.c.status == status)
        total = await self._session.scalar(sa.select(sa.func.count()).select_from(deliveries).where(*where))
        stmt = (
            sa.select(deliveries)
            .where(*where)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
            .limit(limit)
            .offset(offset)
        )
        rows = [dict(r._mapping) for r in (await self._session.execute(stmt)).all()]
        await self._with_attempts(rows)
        return rows, int(total or 0)

    async def delivery(self, subscription_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        stmt = sa.select(deliveries).where(
            deliveries.c.id == delivery_id, deliveries.c.subscription_id == subscription_id
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            return None
        found = [dict(row._mapping)]
        await self._with_attempts(found)
        return found[0]

    async def _with_attempts(self, rows: list[dict[str, Any]]) -> None:
        by_id: dict[uuid.UUID, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
        for r in rows:
            r["attempts"] = by_id[r["id"]]
        if not by_id:
            return
        stmt = sa.select(attempts).where(attempts.c.delivery_id.in_(by_id)).order_by(attempts.c.attempt)
        for a in (await self._session.execute(stmt)).all():
            by_id[a.delivery_id].append(dict(a._mapping))

    async def add_redelivery(self, original: dict[str, Any], new_id: uuid.UUID, now: datetime | None) -> None:
        """A fresh delivery of the same event and body, due `now`, linked to the one it repeats."""
        keep = ("subscription_id", "project_id", "event_id", "topic", "body")
        await self._session.execute(
            sa.insert(deliveries).values(
                **{k: original[k] for k in keep},
                id=new_id,
                status=DeliveryStatus.PENDING,
                attempt_count=0,
                next_attempt_at=now,
                redelivery_of=original["id"],
                created_at=now,
            )
        )
