"""Poll a batch subscriber fast while records flow, slowly once it has been idle a while.

A consumer that must answer within milliseconds asks the broker for data every few
milliseconds. Brokers that hold a fetch for its whole wait (the local Tansu) turn that
into a steady stream of requests even when nothing happens: a core's worth of polling
for an idle stack. :class:`PollPace` keeps the short wait while batches arrive and, once
none came for `idle_after` seconds, lengthens the fetch wait and the pause between polls.
The first record after a quiet spell pays at most the idle wait; the ones after it the
busy wait again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

_log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Pace:
    """How long the broker may hold a fetch, and the pause after a poll that found nothing."""

    fetch_max_wait_ms: int
    pause_ms: int


class PollPace:
    """Switches one faststream batch subscriber between a busy and an idle pace.

    `track(handler)` marks activity on every batch; `run(stop)` is the background task that
    slows the subscriber down once it has been idle. A restarted consumer starts at the pace it
    was built with; the task sets the current one again each round.
    """

    def __init__(self, busy: Pace, idle: Pace, idle_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.busy, self.idle, self.idle_after = busy, idle, idle_after
        self._clock = clock
        self._last_batch = clock()
        self._subscriber: Any = None
        self.current = busy

    def attach(self, subscriber: Any) -> None:
        """The faststream batch subscriber to pace (its aiokafka consumer exists once started)."""
        self._subscriber = subscriber

    def track(self, handler: Callable[[T], Awaitable[None]]) -> Callable[[T], Awaitable[None]]:
        """`handler`, marking each batch as activity (back to the busy pace at once)."""

        async def handle(batch: T) -> None:
            self._last_batch = self._clock()
            if self.current is not self.busy:
                self._apply(self.busy)
            await handler(batch)

        return handle

    def tick(self) -> None:
        """Pick the pace the time since the last batch calls for, and set it."""
        idle = self._clock() - self._last_batch >= self.idle_after
        self._apply(self.idle if idle else self.busy)

    async def run(self, stop: asyncio.Event) -> None:
        every = max(0.05, min(1.0, self.idle_after / 4))
        while not stop.is_set():
            self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    def _apply(self, pace: Pace) -> None:
        if pace is not self.current:
            _log.debug("poll pace: fetch wait %d ms, pause %d ms", pace.fetch_max_wait_ms, pace.pause_ms)
        self.current = pace
        subscriber = self._subscriber
        if subscriber is None:
            return
        subscriber.batch_timeout_ms = pace.pause_ms  # faststream: getmany's timeout and the pause after it
        # aiokafka reads the wait from its fetcher each time it builds a fetch request; the attribute
        # is private, so a test pins it to the aiokafka version in constraints.txt.
        fetcher = getattr(getattr(subscriber, "consumer", None), "_fetcher", None)
        if fetcher is not None:
            fetcher._fetch_max_wait_ms = pace.fetch_max_wait_ms
