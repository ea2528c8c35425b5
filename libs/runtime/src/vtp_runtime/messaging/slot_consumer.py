"""The take loop of a worker with a bounded number of slots: commands from one topic, committed by hand.

One member of a consumer group (manual commits, reading from the earliest offset) takes a command
only while one of its :class:`~vtp_runtime.slots.Slots` is free, fetching at most as many as are
free. While full it pauses its partitions, so the group hands waiting commands to other members.

Each record goes to the worker's `take(record)`, in order. It answers True when the record is done
with (its work started, or it was skipped or dead-lettered): its offset is committed at once.
False means the record must come again: the partition is rewound to it (it and the rest of its
batch are read again) after a pause. What "started" means, and so when a command is committed,
is the worker's; a worker that dies before that leaves the command to the group.

`take` runs in the trace of its command (the record's ``traceparent``, as a subscriber's handler
does, :mod:`vtp_runtime.messaging.consumer`), so the work it starts (a task copies the context)
runs there for its whole life: its log lines and the events it stages, those its child process
reports included, carry that trace. A command without a valid ``traceparent`` starts none.

Failures never end the loop quietly: a fetch that fails is reported to the supervisor and retried
after a pause; a commit that fails is kept and retried on every pass until it succeeds or the
partition moves to another member (which reads on from the last commit). Each change of the
member's partitions is logged ("holds partitions [0, 2]"), so an operator sees which replica takes
what after a rebalance. The loop runs as a
supervised background task: a crash restarts the loop while the running work goes on; `on_stop`
(the worker's hand-back) runs only when the service is stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeAlias

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition

from vtp_runtime.messaging.consuming import sleep_unless_stopped, start_retrying
from vtp_runtime.messaging.tracing import record_trace
from vtp_runtime.supervision import report_failure, report_ok
from vtp_runtime.tracing import adopted

_log = logging.getLogger(__name__)
Record: TypeAlias = ConsumerRecord[Any, Any]
Take = Callable[[Record], Awaitable[bool]]
Hook = Callable[[], Awaitable[None]]
ConsumerFactory = Callable[..., Any]  # AIOKafkaConsumer's signature; tests pass a fake
FETCH_TIMEOUT_MS = 500
FULL_RECHECK_SECONDS = 0.5  # while full: commits are retried (and a lost partition dropped) this often


class FreeSlots(Protocol):
    """What the loop needs of the slots (see :class:`~vtp_runtime.slots.Slots`)."""

    @property
    def free(self) -> int: ...

    async def wait_freed(self, timeout: float) -> None: ...


class SlotConsumer:
    """Takes `topic`'s commands into `slots` as group `group`; `run(stop)` is the background task."""

    def __init__(
        self,
        topic: str,
        *,
        group: str,
        bootstrap: str,
        client_id: str,
        slots: FreeSlots,
        take: Take,
        what: str,
        retry_pause: float = 1.0,
        on_start: Hook | None = None,
        on_stop: Hook | None = None,
        log: logging.Logger = _log,
        new_consumer: ConsumerFactory = AIOKafkaConsumer,
    ) -> None:
        """`what` names the commands in log lines ("export commands"); `on_start` runs before the
        consumer joins the group, `on_stop` when the loop ends because the service is stopping."""
        self._topic, self._group, self._bootstrap, self._client_id = topic, group, bootstrap, client_id
        self._slots, self._take, self._what, self._pause = slots, take, what, retry_pause
        self._on_start, self._on_stop = on_start, on_stop
        self._log, self._new_consumer = log, new_consumer
        self.uncommitted: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self.holds: list[int] | None = None  # the partitions this member was last seen to hold

    async def run(self, stop: asyncio.Event) -> None:
        """Take commands until `stop` is set; then `on_stop` and leave the group."""
        consumer = self._new_consumer(
            self._topic,
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self._client_id,
        )
        try:
            if self._on_start is not None:
                await self._on_start()
            await start_retrying(consumer, stop)
            await self._loop(consumer, stop)
        finally:
            try:
                if stop.is_set() and self._on_stop is not None:  # a crash only restarts this loop; work goes on
                    await self._on_stop()
            finally:
                await consumer.stop()

    async def _loop(self, consumer: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._note_assignment(consumer)
            await self._commit(consumer)
            if self._slots.free <= 0:  # full: let the group give waiting commands to other members
                consumer.pause(*consumer.assignment())
                await self._slots.wait_freed(FULL_RECHECK_SECONDS)
                continue
            consumer.resume(*consumer.paused())
            try:
                batches = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=self._slots.free)
            except KafkaError as exc:
                self._log.warning("fetching %s failed: %s", self._what, exc)
                report_failure(exc)
                await sleep_unless_stopped(self._pause, stop)
                continue
            if not self.uncommitted:  # the broker answers and nothing waits: healthy (a failing commit is not)
                report_ok()
            if not await self._take_all(consumer, batches):
                await sleep_unless_stopped(self._pause, stop)

    def _note_assignment(self, consumer: Any) -> None:
        """Log each change of this member's partitions (a rebalance): which replica takes what."""
        holds = sorted(tp.partition for tp in consumer.assignment() if tp.topic == self._topic)
        if holds != self.holds:
            self.holds = holds
            self._log.info("%s: this member of %s holds partitions %s", self._what, self._group, holds)

    async def _take_all(self, consumer: Any, batches: dict[TopicPartition, list[Record]]) -> bool:
        """Take each partition's records in order; False when one was given back."""
        took_all = True
        for partition, records in batches.items():
            for record in records:
                if not await self._take_in_its_trace(record):
                    consumer.seek(partition, record.offset)  # this one and the rest come again
                    took_all = False
                    break
                self.uncommitted[partition] = record.offset + 1
                await self._commit(consumer)
        return took_all

    async def _take_in_its_trace(self, record: Record) -> bool:
        with adopted(record_trace(record.headers)):  # the tasks `take` starts keep it
            return await self._take(record)

    async def _commit(self, consumer: Any) -> None:
        """Commit taken commands; a failure is kept and retried on the next pass, never fatal."""
        assigned = consumer.assignment()
        for moved in [tp for tp in self.uncommitted if tp not in assigned]:
            del self.uncommitted[moved]  # its new owner reads on from the last commit
        if not self.uncommitted:
            return
        offsets = {tp: OffsetAndMetadata(offset, "") for tp, offset in self.uncommitted.items()}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # CommitFailedError after a rebalance, coordinator moving, broker away
            self._log.warning("committing %s failed (%s); retrying", self._what, exc)
            report_failure(exc)
            return
        for tp, offset in offsets.items():
            if self.uncommitted.get(tp) == offset.offset:
                del self.uncommitted[tp]
        report_ok()
