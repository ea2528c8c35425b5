"""Redis pub/sub between replicas: a key or a deployment's limits changed, drop the cached copy.

At most once, like pub/sub itself: a missed message only delays the change until the cached
copy's TTL ends (and a revoked key is refused by the rate limit script on every request anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis

from vtp_runtime.supervision import BackgroundTask

CHANNEL = "vtp:inference:access-changes"
_log = logging.getLogger(__name__)


class KeyChanges:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def publish(self, kind: str, ident: str) -> None:
        """`kind` "key" or "limits"; `ident` the key's or deployment's id."""
        await self._redis.publish(CHANNEL, f"{kind}:{ident}")

    def listener(self, apply: Callable[[str, str], None]) -> BackgroundTask:
        """A background task applying every change until `stop` (restarted by the supervisor if Redis drops)."""

        async def run(stop: asyncio.Event) -> None:
            async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(CHANNEL)
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind, _, ident = message["data"].decode().partition(":")
                    apply(kind, ident)

        return run
