"""The poll pace: busy while batches arrive, idle after a quiet spell, busy again with the next batch."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

from aiokafka.consumer.fetcher import Fetcher

from vtp_runtime.messaging.poll_pace import Pace, PollPace

BUSY, IDLE = Pace(10, 5), Pace(500, 100)


def _subscriber() -> SimpleNamespace:
    fetcher = SimpleNamespace(_fetch_max_wait_ms=BUSY.fetch_max_wait_ms)
    return SimpleNamespace(batch_timeout_ms=BUSY.pause_ms, consumer=SimpleNamespace(_fetcher=fetcher))


async def test_slows_down_when_idle_and_speeds_up_with_the_next_batch() -> None:
    now = [0.0]
    pace = PollPace(BUSY, IDLE, idle_after=10.0, clock=lambda: now[0])
    sub = _subscriber()
    pace.attach(sub)
    seen: list[int] = []

    async def handler(batch: int) -> None:
        seen.append(batch)

    tracked = pace.track(handler)
    now[0] = 9.0
    pace.tick()
    assert (sub.consumer._fetcher._fetch_max_wait_ms, sub.batch_timeout_ms) == (10, 5)
    now[0] = 10.5
    pace.tick()
    assert (sub.consumer._fetcher._fetch_max_wait_ms, sub.batch_timeout_ms) == (500, 100)
    await tracked(1)
    assert seen == [1] and (sub.consumer._fetcher._fetch_max_wait_ms, sub.batch_timeout_ms) == (10, 5)
    now[0] = 15.0
    pace.tick()
    assert pace.current is BUSY  # 4.5 s after the batch: still busy


def test_a_subscriber_not_started_yet_is_left_alone() -> None:
    now = [0.0]
    pace = PollPace(BUSY, IDLE, idle_after=1.0, clock=lambda: now[0])
    sub = SimpleNamespace(batch_timeout_ms=5, consumer=None)
    pace.attach(sub)
    now[0] = 2.0
    pace.tick()
    assert sub.batch_timeout_ms == 100 and pace.current is IDLE


def test_aiokafka_still_reads_the_fetch_wait_from_its_fetcher() -> None:
    """The pace sets a private attribute; this fails if the pinned aiokafka stops reading it."""
    assert "self._fetch_max_wait_ms" in inspect.getsource(Fetcher)
