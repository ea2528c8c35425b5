"""Redis pub/sub fan-out: the replica that stores an event tells every replica about it.

Only one replica of the `notifier` consumer group receives a Kafka record, but a
client's WebSocket may sit on any replica. After the storing transaction commits,
the batch goes out on one channel; every replica listens and routes to its own
clients. Pub/sub is at-most-once, so a listener that loses Redis reports a gap:
its clients are told to reconnect with `since` and get the missed events from
the feed table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from vtp_notifier.domain.feed import FeedEvent
from vtp_runtime.supervision import BackgroundTask, report_failure, report_ok

_log = logging.getLogger(__name__)
RECONNECT_SECONDS = 0.5


def encode(events: Sequence[FeedEvent]) -> str:
    return json.dumps(
        [
            [
                e.seq,
                e.event_id,
                e.topic,
                str(e.project_id),
                e.subject,
                e.job_id and str(e.job_id),
                e.time.isoformat(),
                e.data,
            ]
            for e in events
        ]
    )


def decode(payload: bytes | str) -> list[FeedEvent]:
    items: list[list[Any]] = json.loads(payload)
    return [
        FeedEvent(seq, eid, topic, UUID(project), subject, UUID(job) if job else None, datetime.fromisoformat(t), data)
        for seq, eid, topic, project, subject, job, t, data in items
    ]


class RedisFanout:
    """Publishes stored events to every replica and feeds the ones received to a callback."""

    def __init__(self, client: aioredis.Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self.connected = asyncio.Event()

    async def publish(self, events: Sequence[FeedEvent]) -> None:
        """Best effort: a failure is logged, since the events are already stored for replay."""
        if not events:
            return
        try:
            await self._client.publish(self._channel, encode(events))
        except RedisError:
            _log.exception("could not fan out %d events; clients catch up with `since`", len(events))

    def listener(
        self, on_events: Callable[[list[FeedEvent]], None], on_gap: Callable[[], None]
    ) -> BackgroundTask:
        """A background task delivering every published batch to `on_events` until stopped."""

        async def run(stop: asyncio.Event) -> None:
            while not stop.is_set():
                try:
                    await self._listen(on_events, stop)
                except (RedisError, OSError) as exc:
                    _log.warning("feed channel lost (%s); reconnecting", exc)
                    report_failure(exc)
                self.connected.clear()
                on_gap()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RECONNECT_SECONDS)

        return run

    async def _listen(self, on_events: Callable[[list[FeedEvent]], None], stop: asyncio.Event) -> None:
        async with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self._channel)
            self.connected.set()
            report_ok()
            while not stop.is_set():
                message = await pubsub.get_message(timeout=0.5)
                if message is None:
                    continue
                try:
                    events = decode(message["data"])
                except (ValueError, TypeError, KeyError):
                    _log.error("ignoring a malformed feed message")
                    continue
                on_events(events)
