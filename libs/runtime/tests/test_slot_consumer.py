"""SlotConsumer and Slots: take only into free slots, commit what was taken, give back, pause, supervise.

The runtime's `FakeConsumer` stands in for aiokafka's (partitions of records, positions, commits);
the work is a fake that runs until the test lets it end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from fake_kafka import FakeRecord

from vtp_runtime.messaging.slot_consumer import SlotConsumer
from vtp_runtime.messaging.testing import FakeConsumer, run_until, until
from vtp_runtime.slots import Slots
from vtp_runtime.supervision import Background, Backoff, Supervisor

TOPIC = "thing.requested.v1"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
Key = tuple[str, int]


def fake_consumer(counts: dict[TopicPartition, int], commit_failures: int = 0) -> FakeConsumer:
    consumer = FakeConsumer(TOPIC, partitions=len(counts), commit_failures=commit_failures)
    for tp, count in counts.items():
        consumer.log[tp] = [record(tp, n) for n in range(count)]
    return consumer


def record(tp: TopicPartition, offset: int) -> FakeRecord:
    return FakeRecord(tp.topic, tp.partition, offset, b"k", f"{tp.partition}:{offset}".encode())


class Held:
    """Work that runs until `end()` (or raises `error` then)."""

    def __init__(self, key: Key, error: Exception | None = None) -> None:
        self.key, self.error, self.ran = key, error, False
        self._done = asyncio.Event()

    def end(self) -> None:
        self._done.set()

    async def run(self) -> None:
        self.ran = True
        await self._done.wait()
        if self.error is not None:
            raise self.error


class Worker:
    """The worker's side: `take` starts a `Held` per record, or gives back the offsets in `refuse`."""

    def __init__(self, consumer: FakeConsumer, slots: int, **kwargs: Any) -> None:
        self.slots: Slots[Key, Held] = Slots(slots, crashed="thing %s attempt %d crashed")
        self.refuse: dict[Key, int] = {}  # (partition, offset) -> how many more times to give it back
        self.taken: list[Key] = []
        self.work: dict[Key, Held] = {}
        self.made: list[dict[str, Any]] = []  # each consumer's arguments
        self.loop = SlotConsumer(
            TOPIC,
            group="things",
            bootstrap="kafka:9092",
            client_id="worker-1",
            slots=self.slots,
            take=self.take,
            what="thing commands",
            retry_pause=0.01,
            new_consumer=self._new_consumer,
            **kwargs,
        )
        self._consumer = consumer

    def _new_consumer(self, topic: str, **kwargs: Any) -> FakeConsumer:
        self.made.append({"topic": topic, **kwargs})
        return self._consumer

    async def take(self, rec: Any) -> bool:
        key = (str(rec.partition), rec.offset)
        self.taken.append(key)
        if self.refuse.get(key, 0) > 0:
            self.refuse[key] -= 1
            return False
        self.work[key] = Held(key)
        self.slots.start(key, self.work[key], name=f"thing-{key}")
        return True

    async def end_all(self) -> None:
        for work in self.work.values():
            work.end()
        await until(lambda: not self.slots.running)


def health_watch(sup: Supervisor) -> Callable[[], bool]:
    """A check that holds once the task `things` was marked failing in health and then healthy again."""
    seen: list[bool] = []

    def failed_then_healed() -> bool:
        if "things" in sup.states:
            failing = bool(sup.failing())
            if not seen or seen[-1] != failing:
                seen.append(failing)
        return seen[-2:] == [True, False]

    return failed_then_healed


async def test_it_joins_the_group_with_manual_commits_and_takes_only_into_free_slots() -> None:
    consumer = fake_consumer({P0: 3})
    worker = Worker(consumer, slots=2)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.loop.run(stop))
    try:
        await until(lambda: len(worker.taken) == 2 and bool(consumer.paused_tps))
        assert worker.made == [
            {
                "topic": TOPIC,
                "bootstrap_servers": "kafka:9092",
                "group_id": "things",
                "enable_auto_commit": False,
                "auto_offset_reset": "earliest",
                "client_id": "worker-1",
            }
        ]
        assert consumer.fetched_max[0] == 2 and consumer.last_commit(P0) == 2  # each taken one committed
        assert worker.slots.free == 0 and consumer.paused_tps == {P0}  # full: paused, nothing more fetched
        await asyncio.sleep(0.05)
        assert worker.taken == [("0", 0), ("0", 1)]
        worker.work[("0", 0)].end()  # a slot frees: resumed, the third is taken
        await until(lambda: consumer.last_commit(P0) == 3)
        assert worker.taken == [("0", 0), ("0", 1), ("0", 2)] and set(worker.slots.running) == {("0", 1), ("0", 2)}
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert consumer.events == ["start", "stop"]
    await worker.end_all()


async def test_a_record_given_back_comes_again_with_the_rest_of_its_batch_and_is_not_committed_past() -> None:
    consumer = fake_consumer({P0: 3, P1: 1})
    worker = Worker(consumer, slots=10)
    worker.refuse[("0", 1)] = 2  # the second record must come again, twice
    commits_while_refused: list[int | None] = []

    def check() -> bool:
        if worker.refuse[("0", 1)]:
            commits_while_refused.append(consumer.last_commit(P0))
        return consumer.last_commit(P0) == 3

    await run_until(worker.loop.run, check)
    taken_p0 = [offset for partition, offset in worker.taken if partition == "0"]
    assert taken_p0 == [0, 1, 1, 1, 2]  # in order; nothing after the refused one is skipped
    assert set(commits_while_refused) <= {None, 1}  # never past the one that must come again
    assert ("1", 0) in worker.taken and consumer.last_commit(P1) == 1  # the other partition went on
    await worker.end_all()


async def test_a_failed_commit_is_kept_and_retried_and_marks_the_loop_failing_until_one_succeeds() -> None:
    consumer = fake_consumer({P0: 1}, commit_failures=4)
    worker = Worker(consumer, slots=1)  # full after the take: a pass every 0.5 s
    sup = Supervisor(unhealthy_after=3)
    failed_then_healed = health_watch(sup)

    await run_until(lambda stop: sup.run(Background("things", worker.loop.run), stop), failed_then_healed)
    assert consumer.commits == [{P0: 1}] and sup.states["things"].restarts == 0  # handled, never a crash
    assert worker.slots.running  # the running work was kept
    await worker.end_all()


async def test_a_partition_that_moved_to_another_member_is_not_committed_any_more() -> None:
    consumer = fake_consumer({P0: 1, P1: 1}, commit_failures=10**6)
    worker = Worker(consumer, slots=2)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.loop.run(stop))
    try:
        await until(lambda: set(worker.loop.uncommitted) == {P0, P1})
        consumer.assigned = {P1}  # a rebalance: P0's new owner reads on from its last commit
        await until(lambda: set(worker.loop.uncommitted) == {P1})
        consumer.commit_failures = 0
        await until(lambda: not worker.loop.uncommitted)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert consumer.commits == [{P1: 1}]
    await worker.end_all()


async def test_each_change_of_the_members_partitions_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    consumer = fake_consumer({P0: 0, P1: 0})
    worker = Worker(consumer, slots=1)
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="vtp_runtime.messaging.slot_consumer")
    loop = asyncio.create_task(worker.loop.run(stop))
    try:
        await until(lambda: worker.loop.holds == [0, 1])
        consumer.assigned = {P1}  # a second member joined and took partition 0
        await until(lambda: worker.loop.holds == [1])
        await asyncio.sleep(0.05)  # more passes, no change: no more lines
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    lines = [r.getMessage() for r in caplog.records if "holds partitions" in r.getMessage()]
    assert lines == [
        "thing commands: this member of things holds partitions [0, 1]",
        "thing commands: this member of things holds partitions [1]",
    ]


async def test_a_fetch_that_fails_is_reported_and_retried_never_a_crash() -> None:
    consumer = fake_consumer({P0: 1})
    consumer.fetch_failures = 3
    worker = Worker(consumer, slots=1)
    sup = Supervisor(unhealthy_after=3)
    failed_then_healed = health_watch(sup)

    await run_until(
        lambda stop: sup.run(Background("things", worker.loop.run), stop),
        lambda: failed_then_healed() and consumer.last_commit(P0) == 1,
    )
    assert sup.states["things"].restarts == 0 and worker.taken == [("0", 0)]
    await worker.end_all()


async def test_on_stop_runs_when_the_service_stops_but_not_when_the_loop_crashes() -> None:
    consumer = fake_consumer({P0: 1})
    calls: list[str] = []

    async def on_start() -> None:
        calls.append("on_start")

    async def on_stop() -> None:
        calls.append("on_stop")

    worker = Worker(consumer, slots=2, on_start=on_start, on_stop=on_stop)
    original, fetches = consumer.getmany, [0]

    async def getmany(**kwargs: Any) -> Any:
        fetches[0] += 1
        if fetches[0] == 3:
            raise RuntimeError("bug in the take loop")
        return await original(**kwargs)

    consumer.getmany = getmany  # type: ignore[method-assign]
    sup = Supervisor(backoff=Backoff(initial=0.01, maximum=0.01))
    await run_until(
        lambda stop: sup.run(Background("things", worker.loop.run), stop),
        lambda: sup.states.get("things") is not None and sup.states["things"].restarts == 1 and fetches[0] > 4,
    )
    assert calls == ["on_start", "on_start", "on_stop"]  # the crash only restarted the loop
    assert consumer.events == ["start", "stop", "start", "stop"]  # the consumer left the group both times
    assert worker.slots.running  # the work went on through the crash
    await worker.end_all()


async def test_slots_log_work_that_crashed_free_its_slot_and_run_the_ended_hook_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []

    async def ended(key: Key, work: Held, slot: int) -> None:
        order.append(f"ended {key} slot {slot} running={key in slots.running} free={slots.free}")
        if key == ("b", 1):
            raise OSError("clean-up failed")

    slots: Slots[Key, Held] = Slots(2, crashed="thing %s attempt %d crashed", ended=ended)
    first, second = Held(("a", 1), error=ValueError("boom")), Held(("b", 1))
    slot = slots.reserve()
    assert slot == 0 and slots.free == 1
    slots.unreserve(slot)  # the work could not be built: the same slot is handed out next
    task = slots.start(("a", 1), first, name="thing-a")
    slots.start(("b", 1), second, slot=slots.reserve(), name="thing-b")
    assert slots.free == 0 and set(slots.running) == {("a", 1), ("b", 1)}
    with pytest.raises(RuntimeError):
        slots.reserve()
    with caplog.at_level(logging.ERROR):
        first.end()
        await slots.wait_freed(5)
        assert task.done() and task.exception() is None  # the crash is logged, not left in the task
        second.end()
        await until(lambda: slots.free == 2)
    assert order == ["ended ('a', 1) slot 0 running=False free=0", "ended ('b', 1) slot 1 running=False free=1"]
    messages = [r.getMessage() for r in caplog.records]
    assert "thing a attempt 1 crashed" in messages and "cleaning up after ('b', 1) failed" in messages
    assert slots.reserve() == 0  # freed slots are handed out in the order they were freed
