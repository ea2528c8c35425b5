"""Webhook subscriptions and their delivery log (`/api/v1/subscriptions`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from vtp_client._base import Group, Page, Resource

__all__ = ["Attempt", "Delivery", "Subscription", "SubscriptionCreated", "Subscriptions"]


class Subscription(Resource):
    id: UUID
    url: str
    event_types: list[str] = []
    job_ids: list[UUID] = []
    description: str | None = None
    active: bool
    disabled_reason: str | None = None
    consecutive_failures: int = 0
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(Subscription):
    secret: str
    """The signing secret (`whsec_...`), shown only in this answer: give it to the receiver."""


class Attempt(Resource):
    attempt: int
    started_at: datetime
    latency_ms: int
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None


class Delivery(Resource):
    id: UUID
    subscription_id: UUID
    event_id: str
    topic: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    redelivery_of: UUID | None = None
    created_at: datetime
    completed_at: datetime | None = None
    dead_lettered_at: datetime | None = None
    attempts: list[Attempt] = []


class Subscriptions(Group):
    """`client.subscriptions` (also `client.hooks`): signed webhooks (Standard Webhooks) for platform events."""

    def create(
        self,
        url: str,
        *,
        event_types: Sequence[str] = (),
        job_ids: Sequence[UUID | str] = (),
        description: str | None = None,
    ) -> SubscriptionCreated:
        """Subscribe `url` to topics (`job.lifecycle.v1`, ...; none: every topic), optionally only some jobs."""
        body: dict[str, Any] = {"url": url, "event_types": list(event_types), "job_ids": [str(j) for j in job_ids]}
        if description is not None:
            body["description"] = description
        return SubscriptionCreated.model_validate(self._t.json("POST", "/api/v1/subscriptions", json=body))

    def list(self, *, limit: int = 50, offset: int = 0) -> Page[Subscription]:
        params = {"limit": limit, "offset": offset}
        return Page[Subscription].model_validate(self._t.json("GET", "/api/v1/subscriptions", params=params))

    def get(self, subscription_id: UUID | str) -> Subscription:
        return Subscription.model_validate(self._t.json("GET", f"/api/v1/subscriptions/{subscription_id}"))

    def update(
        self,
        subscription_id: UUID | str,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        job_ids: Sequence[UUID | str] | None = None,
        description: str | None = None,
        active: bool | None = None,
    ) -> Subscription:
        """Change only the fields given; `active=True` re-enables a disabled subscription. Retried (it sets)."""
        body: dict[str, Any] = {"url": url, "description": description, "active": active}
        body["event_types"] = None if event_types is None else list(event_types)
        body["job_ids"] = None if job_ids is None else [str(j) for j in job_ids]
        body = {k: v for k, v in body.items() if v is not None}
        path = f"/api/v1/subscriptions/{subscription_id}"
        return Subscription.model_validate(self._t.json("PATCH", path, json=body, idempotent=True))

    def delete(self, subscription_id: UUID | str) -> None:
        """Delete; deliveries not yet made are cancelled."""
        self._t.request("DELETE", f"/api/v1/subscriptions/{subscription_id}")

    def rotate_secret(self, subscription_id: UUID | str) -> str:
        """A new signing secret (shown only here); tries from now on are signed with it."""
        answer = self._t.json("POST", f"/api/v1/subscriptions/{subscription_id}/rotate-secret")
        return str(answer["secret"])

    def deliveries(
        self, subscription_id: UUID | str, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[Delivery]:
        """The delivery log, newest first (`status`: pending, delivering, succeeded, dead, cancelled)."""
        params = {"status": status, "limit": limit, "offset": offset}
        path = f"/api/v1/subscriptions/{subscription_id}/deliveries"
        return Page[Delivery].model_validate(self._t.json("GET", path, params=params))

    def delivery(self, subscription_id: UUID | str, delivery_id: UUID | str) -> Delivery:
        path = f"/api/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}"
        return Delivery.model_validate(self._t.json("GET", path))

    def redeliver(self, subscription_id: UUID | str, delivery_id: UUID | str) -> Delivery:
        """Deliver the same event again with fresh tries (a new delivery; `redelivery_of` the old one)."""
        path = f"/api/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"
        return Delivery.model_validate(self._t.json("POST", path))
