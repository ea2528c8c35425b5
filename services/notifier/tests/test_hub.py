"""The hub and client feeds with fake sockets: routing, the history seam and slow clients."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from vtp_notifier.domain.feed import FeedEvent, FeedFilter
from vtp_notifier.service_layer.hub import CLOSE_FEED_GAP, CLOSE_SLOW_CONSUMER, ClientFeed, Hub

PROJECT, OTHER = uuid.uuid4(), uuid.uuid4()
JOB = uuid.uuid4()


def event(seq: int, project: uuid.UUID = PROJECT, job: uuid.UUID = JOB) -> FeedEvent:
    data = {
        "job_id": str(job),
        "project_id": str(project),
        "attempt": 1,
        "kind": "last",
        "epoch": seq,
        "checkpoint": {},
        "metrics": {},
    }
    return FeedEvent(seq, f"e{seq}", "checkpoint.saved.v1", project, str(job), job, datetime.now(UTC), data)


class FakeSocket:
    """Records what was sent; `stuck` makes every send hang like a client that stopped reading."""

    def __init__(self, stuck: bool = False) -> None:
        self.sent: list[dict] = []
        self.closed_with: tuple[int, str | None] | None = None
        self.stuck = stuck

    async def send_text(self, data: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = (code, reason)

    @property
    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.sent]


def subscribed(hub: Hub, socket: FakeSocket, project: uuid.UUID = PROJECT, buffer: int = 100) -> ClientFeed:
    feed = ClientFeed(socket, project, buffer)
    hub.join(feed)
    hub.watch(feed, FeedFilter(project))
    feed.go_live(set())
    return feed


async def test_events_reach_only_their_projects_clients() -> None:
    hub = Hub()
    mine, theirs = FakeSocket(), FakeSocket()
    feeds = [subscribed(hub, mine), subscribed(hub, theirs, OTHER)]
    writers = [asyncio.create_task(f.write()) for f in feeds]
    hub.dispatch([event(1), event(2, OTHER), event(3)])
    await asyncio.sleep(0.05)
    assert mine.seqs == [1, 3] and theirs.seqs == [2]
    for w in writers:
        w.cancel()


async def test_no_messages_before_a_subscription() -> None:
    hub, socket = Hub(), FakeSocket()
    feed = ClientFeed(socket, PROJECT, 10)
    hub.join(feed)
    writer = asyncio.create_task(feed.write())
    hub.dispatch([event(1)])
    await asyncio.sleep(0.05)
    assert socket.sent == []
    writer.cancel()


async def test_seam_holds_live_events_and_drops_those_the_history_carried() -> None:
    hub, socket = Hub(), FakeSocket()
    feed = ClientFeed(socket, PROJECT, 100)
    hub.join(feed)
    writer = asyncio.create_task(feed.write())
    hub.watch(feed, FeedFilter(PROJECT, frozenset({JOB})))
    hub.dispatch([event(3), event(4)])  # committed while the history query ran: in both
    for history_event in (event(1), event(2), event(3)):
        await feed.send_history(history_event)
    hub.dispatch([event(5)])  # still catching up: held, not lost
    feed.go_live({"e1", "e2", "e3"})
    hub.dispatch([event(6), event(2)])  # 2: fanned out late by another replica, already replayed
    await asyncio.sleep(0.05)
    assert socket.seqs == [1, 2, 3, 4, 5, 6]
    writer.cancel()


async def test_a_stuck_client_is_dropped_without_slowing_the_others() -> None:
    hub = Hub()
    stuck, fast = FakeSocket(stuck=True), FakeSocket()
    slow_feed, fast_feed = subscribed(hub, stuck, buffer=5), subscribed(hub, fast, buffer=5)
    writers = [asyncio.create_task(f.write()) for f in (slow_feed, fast_feed)]
    for seq in range(1, 51):
        hub.dispatch([event(seq)])  # never awaits a socket
        await asyncio.sleep(0)
    await asyncio.wait_for(writers[0], 3)  # the stuck writer gave up and closed
    assert stuck.closed_with is not None and stuck.closed_with[0] == CLOSE_SLOW_CONSUMER
    await asyncio.sleep(0.05)
    assert fast.seqs == list(range(1, 51))
    writers[1].cancel()


async def test_a_job_subscription_from_another_project_gets_nothing_and_resubscribing_moves_the_feed() -> None:
    hub, socket = Hub(), FakeSocket()
    feed = ClientFeed(socket, OTHER, 10)
    hub.join(feed)
    writer = asyncio.create_task(feed.write())
    hub.watch(feed, FeedFilter(OTHER, frozenset({JOB})))  # JOB belongs to PROJECT
    feed.go_live(set())
    hub.dispatch([event(1)])
    other_job = uuid.uuid4()
    hub.watch(feed, FeedFilter(OTHER, frozenset({other_job})))
    feed.go_live(set())
    hub.dispatch([event(2, OTHER, other_job), event(3, OTHER, JOB)])
    await asyncio.sleep(0.05)
    assert socket.seqs == [2]
    hub.leave(feed)
    assert hub.clients == 0 and not hub._by_job and not hub._project_wide
    writer.cancel()


async def test_losing_the_fanout_asks_every_client_to_resume() -> None:
    hub, socket = Hub(), FakeSocket()
    feed = subscribed(hub, socket)
    writer = asyncio.create_task(feed.write())
    hub.gap()
    await asyncio.wait_for(writer, 3)
    assert socket.closed_with is not None and socket.closed_with[0] == CLOSE_FEED_GAP


async def _subscribe(hub: Hub, feed: ClientFeed, wanted: FeedFilter, history: list[FeedEvent]) -> int:
    """What the socket does on a subscribe with the job's whole history; returns the events replayed."""
    hub.watch(feed, wanted)
    replay = feed.unsent(history)
    for history_event in replay:
        await feed.send_history(history_event)
    feed.go_live({e.event_id for e in replay}, covered_from=0)
    return len(replay)


async def test_subscribing_again_to_the_same_job_sends_nothing_twice() -> None:
    hub, socket = Hub(), FakeSocket()
    feed = ClientFeed(socket, PROJECT, 100)
    hub.join(feed)
    writer = asyncio.create_task(feed.write())
    wanted = FeedFilter(PROJECT, frozenset({JOB}))
    assert await _subscribe(hub, feed, wanted, [event(1), event(2)]) == 2
    hub.dispatch([event(3)])
    assert await _subscribe(hub, feed, wanted, [event(1), event(2), event(3)]) == 0
    hub.dispatch([event(4)])
    await asyncio.sleep(0.05)
    assert socket.seqs == [1, 2, 3, 4]
    writer.cancel()


async def test_a_wider_resubscription_replays_only_what_is_new_and_late_events_still_arrive() -> None:
    hub, socket = Hub(), FakeSocket()
    feed = ClientFeed(socket, PROJECT, 100)
    hub.join(feed)
    writer = asyncio.create_task(feed.write())
    second_job = uuid.uuid4()
    await _subscribe(hub, feed, FeedFilter(PROJECT, frozenset({JOB})), [event(1)])
    hub.dispatch([event(3)])
    # Seq 2 was committed late: in the new history, but not yet fanned out when seq 3 was.
    history = [event(1), event(2), event(3), event(4, job=second_job)]
    wider = FeedFilter(PROJECT, frozenset({JOB, second_job}))
    assert await _subscribe(hub, feed, wider, history) == 1  # the other job's event only
    hub.dispatch([event(2), event(5, job=second_job)])  # the late fan-out of 2 is not lost
    await asyncio.sleep(0.05)
    assert socket.seqs == [1, 3, 4, 2, 5]
    writer.cancel()
