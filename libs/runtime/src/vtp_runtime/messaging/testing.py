"""Test support for take loops: an in-memory consumer, and running a loop until a condition holds.

Workers built on :class:`~vtp_runtime.messaging.slot_consumer.SlotConsumer` (or reading a topic
with `getmany`) take a consumer factory; their unit tests pass one that returns a `FakeConsumer`,
the part of AIOKafkaConsumer a take loop uses, in memory. It holds partitions of records read
from a position (`seek` rewinds), remembers commits and pauses, and fails the next commits or
fetches on demand, as a broker in trouble would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiokafka.errors import CommitFailedError, KafkaConnectionError
from aiokafka.structs import TopicPartition


class FakeConsumer:
    """`partitions` partitions of `topic`, all assigned; `records` are the first one's (tests may append)."""

    def __init__(
        self, topic: str, records: Sequence[Any] = (), *, partitions: int = 1, commit_failures: int = 0
    ) -> None:
        self.tp = TopicPartition(topic, 0)
        self.log: dict[TopicPartition, list[Any]] = {TopicPartition(topic, n): [] for n in range(partitions)}
        self.log[self.tp] += records
        self.positions = dict.fromkeys(self.log, 0)
        self.assigned, self.paused_tps = set(self.log), set[TopicPartition]()
        self.commits: list[dict[TopicPartition, int]] = []  # each successful commit's offsets
        self.commit_failures, self.fetch_failures = commit_failures, 0  # how many of the next ones raise
        self.fetched_max: list[int | None] = []  # each fetch's `max_records`
        self.events: list[str] = []  # "start" and "stop", in order

    @property
    def records(self) -> list[Any]:
        return self.log[self.tp]

    @property
    def position(self) -> int:
        return self.positions[self.tp]

    @position.setter
    def position(self, offset: int) -> None:
        self.positions[self.tp] = offset

    @property
    def committed(self) -> list[int]:
        """The offsets committed for the first partition, in order."""
        return [commit[self.tp] for commit in self.commits if self.tp in commit]

    def last_commit(self, tp: TopicPartition) -> int | None:
        return next((commit[tp] for commit in reversed(self.commits) if tp in commit), None)

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused_tps |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_tps -= set(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        """Up to `max_records` in all (partition by partition) from the assigned, unpaused partitions."""
        await asyncio.sleep(0.005)  # a real fetch takes a while: the loop under test never spins
        if self.fetch_failures:
            self.fetch_failures -= 1
            raise KafkaConnectionError("broker away")
        self.fetched_max.append(max_records)
        batches: dict[TopicPartition, list[Any]] = {}
        left = max_records
        for tp in sorted(self.assigned - self.paused_tps):
            start = self.positions[tp]
            batch = self.log[tp][start : None if left is None else start + left]
            if batch:
                batches[tp] = batch
                self.positions[tp] += len(batch)
                left = None if left is None else left - len(batch)
            if left == 0:
                break
        return batches

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        if self.commit_failures:
            self.commit_failures -= 1
            raise CommitFailedError("the group rebalanced")
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})


async def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    """Wait until `condition()` holds; fail the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def run_until(task: Callable[[asyncio.Event], Coroutine[Any, Any, None]], check: Callable[[], bool]) -> None:
    """Run a background loop until `check` holds, then stop it and wait for its end (hand-back included).

    Fails if the loop ends on its own first (with its exception, if it raised).
    """
    stop = asyncio.Event()
    loop = asyncio.create_task(task(stop))
    try:
        await until(lambda: check() or loop.done())
        assert not loop.done(), loop.exception() if loop.done() else None
    finally:
        stop.set()
        await asyncio.wait_for(loop, 20)
