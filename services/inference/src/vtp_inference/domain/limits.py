"""Rate limit policies of one request, and how their state is told to the client.

A key and a deployment may each have limits: requests per second and per minute (token buckets),
concurrent requests, and images per UTC day and month (quotas). A request is admitted only if
every policy that applies admits it. The state is reported in the IETF `RateLimit-Policy` and
`RateLimit` fields (draft-ietf-httpapi-ratelimit-headers): one item per policy.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vtp_inference.domain.keys import Limits

BUCKET, CONCURRENT, QUOTA = "bucket", "concurrent", "quota"


@dataclass(frozen=True)
class Policy:
    name: str  # e.g. "key-per-second": the item name in the headers
    kind: str  # BUCKET, CONCURRENT or QUOTA
    limit: int
    window: float  # seconds: a bucket's window, a quota's time left in its period, a concurrent slot's lease
    store_key: str  # where its state lives (shared by every replica)
    unit: str = "requests"

    def cost(self, images: int) -> int:
        return images if self.kind == QUOTA else 1


@dataclass(frozen=True)
class PolicyState:
    policy: Policy
    remaining: int
    reset: float  # seconds until the budget is whole again


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    states: tuple[PolicyState, ...] = ()
    retry_after: float = 0.0
    ended: bool = False  # the key was revoked or its rotation overlap is over


def _period_ends(now: datetime) -> tuple[str, float, str, float]:
    day_end = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    month_end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return (
        now.strftime("%Y-%m-%d"),
        (day_end - now).total_seconds(),
        now.strftime("%Y-%m"),
        (month_end - now).total_seconds(),
    )


def policies(scope: str, subject: uuid.UUID, limits: Limits, now: datetime, lease: float) -> list[Policy]:
    """The policies of one subject (`scope` "key" or "deployment"); quotas count per UTC day and month."""
    base = f"vtp:inference:rl:{scope}:{subject}"
    day, day_left, month, month_left = _period_ends(now)
    wanted = [
        ("per-second", BUCKET, limits.per_second, 1.0, "s", "requests"),
        ("per-minute", BUCKET, limits.per_minute, 60.0, "m", "requests"),
        ("concurrent", CONCURRENT, limits.concurrent, lease, "c", "concurrent-requests"),
        ("images-per-day", QUOTA, limits.images_per_day, day_left, f"d:{day}", "images"),
        ("images-per-month", QUOTA, limits.images_per_month, month_left, f"mo:{month}", "images"),
    ]
    return [
        Policy(f"{scope}-{name}", kind, limit, window, f"{base}:{suffix}", unit)
        for name, kind, limit, window, suffix, unit in wanted
        if limit
    ]


def still_current(store_key: str, now: datetime) -> bool:
    """Whether a quota's state (`Policy.store_key`) is of the current UTC day or month: a window that
    ended gets nothing back (its images count in a period that is over)."""
    day, _, month, _ = _period_ends(now)
    return store_key.endswith((f":d:{day}", f":mo:{month}"))


def headers(verdict: Verdict) -> dict[str, str]:
    """`RateLimit-Policy` (quota `q`, window `w`, unit `qu`) and `RateLimit` (remaining `r`, reset `t`)."""
    if not verdict.states:
        return {}
    policy_items, state_items = [], []
    for s in verdict.states:
        p = s.policy
        item = f'"{p.name}";q={p.limit}'
        if p.kind == BUCKET:
            item += f";w={int(p.window)}"
        elif p.kind == QUOTA:
            item += f";w={86400 if 'day' in p.name else 2592000}"
        if p.unit != "requests":
            item += f';qu="{p.unit}"'
        policy_items.append(item)
        state_items.append(f'"{p.name}";r={max(0, s.remaining)};t={max(0, math.ceil(s.reset))}')
    out = {"RateLimit-Policy": ", ".join(policy_items), "RateLimit": ", ".join(state_items)}
    if not verdict.allowed:
        out["Retry-After"] = str(max(1, math.ceil(verdict.retry_after)))
    return out
