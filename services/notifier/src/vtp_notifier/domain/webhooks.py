"""Webhook subscriptions, the deliveries they get and when a failed one is tried again."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from vtp_notifier.domain.feed import FEED_TOPICS, FeedEvent

EVENT_TYPES: frozenset[str] = frozenset(spec.topic for spec in FEED_TOPICS)
EXCERPT_BYTES = 1024


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next try
    DELIVERING = "delivering"  # claimed by a replica until its lease ends
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # every try failed: the dead-letter record
    CANCELLED = "cancelled"  # its subscription was deleted first


class SubscriptionNotFound(Exception):
    """No subscription with this id in the caller's project."""


class DeliveryNotFound(Exception):
    """No delivery with this id under the subscription."""


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused, pointing into its body."""

    pointer: str
    code: str
    message: str


@dataclass(frozen=True)
class Subscription:
    """Where one project's events are posted; empty filters mean everything of the project."""

    id: UUID
    project_id: UUID
    url: str
    event_types: frozenset[str]
    job_ids: frozenset[UUID]
    description: str | None
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime

    def matches(self, event: FeedEvent) -> bool:
        if event.project_id != self.project_id:
            return False
        if self.event_types and event.topic not in self.event_types:
            return False
        return not self.job_ids or event.job_id in self.job_ids


def unknown_event_types(names: Sequence[str]) -> list[Problem]:
    """A problem per name that is not a feed topic."""
    return [
        Problem(f"#/body/event_types/{i}", "unknown_event_type", f"{name!r} is not one of {sorted(EVENT_TYPES)}")
        for i, name in enumerate(names)
        if name not in EVENT_TYPES
    ]


def event_body(event: FeedEvent) -> str:
    """The JSON body posted for an event; stored once so every try signs the same bytes."""
    body = {
        "id": event.event_id,
        "type": event.topic,
        "timestamp": event.time.isoformat(),
        "subject": event.subject,
        "project_id": str(event.project_id),
        "data": event.data,
    }
    return json.dumps(body, separators=(",", ":"), default=str)


def retry_delay(
    schedule: Sequence[float], next_try: int, jitter: float, uniform: Callable[[float, float], float] = random.uniform
) -> float | None:
    """Seconds to wait before try `next_try` (1-based), or None when the schedule has no such try.

    Jitter spreads retries of many deliveries that failed together (a receiver's outage) so
    they do not all come back at the same instant.
    """
    if next_try < 1 or next_try > len(schedule):
        return None
    return max(0.0, schedule[next_try - 1] * uniform(1 - jitter, 1 + jitter))


@dataclass(frozen=True)
class AttemptResult:
    """What one try of a delivery came to; success is a 2xx answer."""

    started_at: datetime
    latency_ms: int
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def excerpt(raw: bytes) -> str:
    """At most 1 KB of a response, decoded leniently (receivers answer anything)."""
    return raw[:EXCERPT_BYTES].decode("utf-8", errors="replace")
