"""The live side of the feed on one replica: which client gets which message.

Each connected client is a :class:`ClientFeed` with a bounded send buffer. The
hub routes every event (from the fan-out) to the feeds of its project, without
ever waiting on a socket: a client that cannot keep up overflows its own buffer
and is dropped, so it never slows anyone else down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from vtp_notifier.domain.feed import FeedEvent, FeedFilter

CLOSE_SLOW_CONSUMER = 4008  # the client's send buffer overflowed
REPLAYED_MEMORY_SECONDS = 30.0  # far longer than a commit-to-fan-out delay
CLOSE_FEED_GAP = 1012  # "service restart": this replica may have missed events; resume with `since`


class Socket(Protocol):
    """What the hub needs of a WebSocket (Starlette's satisfies it)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(frozen=True)
class Coverage:
    """What a subscription has sent: every wanted message of events with `low <= seq <= high`.

    An event committed late (a lower seq fanned out after a higher one) still arrives live, so
    a resubscription may treat the whole range as sent and skip it in its history.
    """

    wanted: FeedFilter
    low: int
    high: int

    def sent_types(self, event: FeedEvent) -> FeedFilter | None:
        """The filter whose messages of `event` the socket already has, or None."""
        return self.wanted if self.low <= event.seq <= self.high and self.wanted.wants_event(event) else None


class ClientFeed:
    """One client: its subscription, its send buffer and the task that drains it."""

    def __init__(self, socket: Socket, project_id: UUID, buffer: int) -> None:
        self.socket = socket
        self.project_id = project_id
        self.wanted: FeedFilter | None = None  # nothing until the client subscribes
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=buffer)
        self._pending: list[FeedEvent] | None = None  # live events held while history is read
        self.closed: tuple[int, str] | None = None
        self._closing = asyncio.Event()
        # Ids the history carried, remembered a while after going live: another replica may fan an
        # event out only after this one read it from the table (commit first, publish second).
        self._replayed: set[str] = set()
        self._replayed_until = 0.0
        # What the current subscription has sent (seq range), so that subscribing again to the
        # same jobs does not replay what the socket already has: resubscribing is idempotent.
        self._low: int | None = None
        self._high = -1
        self._previous: Coverage | None = None

    def begin_catch_up(self, wanted: FeedFilter) -> None:
        """Hold live events from now on, until :meth:`go_live` after the history is sent."""
        if self.wanted is not None and self._low is not None:
            self._previous = Coverage(self.wanted, self._low, self._high)
        self.wanted = wanted
        self._pending = []

    def unsent(self, history: list[FeedEvent]) -> list[FeedEvent]:
        """The history events with a message the previous subscription did not already send."""
        return [event for event in history if self._history_texts(event)]

    def go_live(self, already_sent: set[str], covered_from: int | None = None) -> None:
        """Release the held events, less those the history already carried: no gap, no duplicate.

        `covered_from`: the lowest seq from which the history held every wanted event (None when
        no history was read: coverage starts with the first live event).
        """
        pending, self._pending = self._pending or [], None
        self._replayed = already_sent
        self._replayed_until = time.monotonic() + REPLAYED_MEMORY_SECONDS
        if self._previous is not None:
            self._high = max(self._high, self._previous.high)
        self._low, self._previous = covered_from, None
        for event in pending:
            self.offer(event)

    def offer(self, event: FeedEvent) -> None:
        """Queue an event's messages if wanted; never blocks."""
        if self.closed or self.wanted is None or not self.wanted.wants_event(event):
            return
        if self._replayed:
            if time.monotonic() > self._replayed_until:
                self._replayed = set()
            elif event.event_id in self._replayed:
                return
        if self._pending is not None:
            if len(self._pending) >= self._queue.maxsize:
                self.overflow()
            else:
                self._pending.append(event)
            return
        self._sent(event.seq)
        for text in self.wanted.wire(event):
            self._put(text)

    def _sent(self, seq: int) -> None:
        if self._low is None:
            self._low = seq
        if seq > self._high:
            self._high = seq

    def _history_texts(self, event: FeedEvent) -> list[str]:
        assert self.wanted is not None
        had = self._previous.sent_types(event) if self._previous is not None else None
        if had is None:
            return self.wanted.wire(event)
        return [text for kind, text in event.wire if self.wanted.wants_type(kind) and not had.wants_type(kind)]

    def send(self, message: dict[str, Any]) -> None:
        """Queue one control message."""
        self._put(json.dumps(message, default=str))

    def _put(self, text: str) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflow()

    async def send_history(self, event: FeedEvent) -> None:
        """Queue a history event's wanted messages, waiting for room: replay goes at the client's pace.

        Messages the previous subscription already sent are skipped.
        """
        self._sent(event.seq)
        for text in self._history_texts(event):
            if self.closed is not None:
                return
            await self._queue.put(text)

    def overflow(self) -> None:
        self.shut(CLOSE_SLOW_CONSUMER, "send buffer overflow: the client reads too slowly")

    def shut(self, code: int, reason: str) -> None:
        """Ask the writer to close the socket (it may be stuck in a send; it is cancelled then)."""
        if self.closed is None:
            self.closed = (code, reason)
            self._closing.set()

    async def write(self) -> None:
        """Drain the buffer into the socket until the feed is shut, then close it with the reason."""
        sender = asyncio.create_task(self._drain())
        waiter = asyncio.create_task(self._closing.wait())
        try:
            await asyncio.wait({sender, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sender.cancel()
            waiter.cancel()
        if self.closed is not None:
            code, reason = self.closed
            # The peer may be gone or stuck; the server drops the connection either way.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.socket.close(code, reason), 2.0)

    async def _drain(self) -> None:
        while True:
            await self.socket.send_text(await self._queue.get())


class Hub:
    """The feeds connected to this replica, indexed by what they watch.

    An event is offered only to the feeds watching its job or its whole project, so routing
    costs what is delivered, not the number of connected clients.
    """

    def __init__(self) -> None:
        self._by_project: dict[UUID, set[ClientFeed]] = {}  # every feed, for gaps and counts
        self._project_wide: dict[UUID, set[ClientFeed]] = {}
        self._by_job: dict[UUID, set[ClientFeed]] = {}

    def join(self, feed: ClientFeed) -> None:
        self._by_project.setdefault(feed.project_id, set()).add(feed)

    def watch(self, feed: ClientFeed, wanted: FeedFilter) -> None:
        """Start (or replace) a feed's subscription; live events are held until it goes live."""
        self._unindex(feed)
        feed.begin_catch_up(wanted)
        if wanted.job_ids:
            for job_id in wanted.job_ids:
                self._by_job.setdefault(job_id, set()).add(feed)
        else:
            self._project_wide.setdefault(wanted.project_id, set()).add(feed)

    def leave(self, feed: ClientFeed) -> None:
        self._unindex(feed)
        _discard(self._by_project, feed.project_id, feed)

    def _unindex(self, feed: ClientFeed) -> None:
        if feed.wanted is None:
            return
        _discard(self._project_wide, feed.wanted.project_id, feed)
        for job_id in feed.wanted.job_ids:
            _discard(self._by_job, job_id, feed)

    def dispatch(self, events: Iterable[FeedEvent]) -> None:
        """Route events to the feeds watching them (called for every fanned-out batch)."""
        for event in events:
            for feed in tuple(self._project_wide.get(event.project_id, ())):
                feed.offer(event)
            if event.job_id is not None:
                for feed in tuple(self._by_job.get(event.job_id, ())):
                    feed.offer(event)  # offer() checks the project too: a job id is no credential

    def gap(self) -> None:
        """This replica lost the fan-out channel: every client resumes elsewhere or later with `since`."""
        for feeds in tuple(self._by_project.values()):
            for feed in tuple(feeds):
                feed.shut(CLOSE_FEED_GAP, "live feed interrupted; reconnect with since=<last event_id>")

    @property
    def clients(self) -> int:
        return sum(len(feeds) for feeds in self._by_project.values())


def _discard(index: dict[UUID, set[ClientFeed]], key: UUID, feed: ClientFeed) -> None:
    feeds = index.get(key)
    if feeds is not None:
        feeds.discard(feed)
        if not feeds:
            del index[key]
