"""The runner: one member of the `trainer-runners` consumer group on `job.requested.v1`.

It takes a job only when it has a free slot (one per GPU, or `cpu_slots`); while
full it pauses its partitions, so the group hands waiting jobs to other runners.
A command's offset is committed once the attempt has announced `started`: a
runner that dies before that leaves the command to another runner, one that dies
after is noticed by the jobs service's heartbeat watchdog. Every runner reads
`job.cancel-requested.v1` in a group of its own, so the holder of a job sees its
cancellation and the others remember not to start it. On shutdown (SIGTERM) it
stops taking jobs, kills its spare children and hands the running jobs back: they
checkpoint and end `requeued`. With a `SparePool`, each free slot has a warm child waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from vtp_contracts.catalog import JOB_CANCEL_REQUESTED, JOB_REQUESTED
from vtp_contracts.events.jobs import JobRequested
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_trainer_runner.attempt import Attempt, AttemptDeps
from vtp_trainer_runner.spares import SparePool

_log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        deps: AttemptDeps,
        bootstrap: str,
        group: str,
        gpu_slots: Sequence[list[int]],
        handback_timeout: float,
        spares: SparePool | None = None,
    ) -> None:
        self.deps, self._bootstrap, self._group = deps, bootstrap, group
        self._slots = list(gpu_slots)  # per slot: the GPUs it owns
        self._free = list(range(len(self._slots)))  # free slots' indices
        self._handback_timeout = handback_timeout
        self._spares = spares
        self.running: dict[tuple[str, int], tuple[Attempt, asyncio.Task[None]]] = {}
        self._cancelled: set[tuple[str, int]] = set()
        self._slot_freed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        jobs = AIOKafkaConsumer(
            JOB_REQUESTED.topic,
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self.deps.runner_id,
        )
        cancels = AIOKafkaConsumer(
            JOB_CANCEL_REQUESTED.topic,
            bootstrap_servers=self._bootstrap,
            group_id=f"{self._group}-cancel-{self.deps.runner_id}",
            auto_offset_reset="earliest",
            client_id=self.deps.runner_id,
        )
        if self._spares is not None:
            await self._spares.start()  # they warm up while the consumers join the group
        try:
            await _start_retrying(jobs, stop)
            await _start_retrying(cancels, stop)
        except BaseException:
            if self._spares is not None:
                await self._spares.close()
            raise
        cancel_task = asyncio.create_task(self._watch_cancellations(cancels))
        try:
            await self._take_jobs(jobs, stop)
        finally:
            if self._spares is not None:
                await self._spares.close()  # first: attempts ending now must not start new spares
            await self._hand_back_all()
            cancel_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cancel_task
            await jobs.stop()
            await cancels.stop()

    async def _take_jobs(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self._free:  # full: let the group give waiting jobs to other runners
                consumer.pause(*consumer.assignment())
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), 0.5)
                continue
            consumer.resume(*consumer.paused())
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=len(self._free))
            except KafkaError as exc:
                _log.warning("fetching job commands failed: %s", exc)
                await asyncio.sleep(1)
                continue
            for partition, records in batches.items():
                for record in records:
                    await self._take(record.headers, record.value or b"")
                    await consumer.commit({partition: OffsetAndMetadata(record.offset + 1, "")})

    async def _take(self, headers: Sequence[tuple[str, bytes]], value: bytes) -> None:
        try:
            cmd: JobRequested = decode_event(JOB_REQUESTED, headers, value).data
        except MalformedEvent as exc:
            _log.error("skipping malformed job command: %s", exc)
            return
        key = (str(cmd.job_id), cmd.attempt)
        if key in self._cancelled or key in self.running:
            _log.info("job %s attempt %d: cancelled or already here, not started", *key)
            return
        slot = self._free.pop(0)
        spare = await self._spares.take(slot) if self._spares is not None else None
        attempt = Attempt(cmd, self.deps, self._slots[slot], spare=spare)
        task = asyncio.create_task(self._supervise(key, slot, attempt), name=f"job-{key[0]}-{key[1]}")
        self.running[key] = (attempt, task)
        await attempt.started.wait()  # commit the command only once `started` is out

    async def _supervise(self, key: tuple[str, int], slot: int, attempt: Attempt) -> None:
        try:
            await attempt.run()
        finally:
            self.running.pop(key, None)
            if self._spares is not None:  # before the slot is free: its next attempt then finds the new spare
                await self._spares.release(slot, attempt.spare)
            self._free.append(slot)
            self._slot_freed.set()

    async def _watch_cancellations(self, consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            try:
                data = decode_event(JOB_CANCEL_REQUESTED, record.headers, record.value or b"").data
            except MalformedEvent:
                continue
            key = (str(data.job_id), data.attempt)
            self._cancelled.add(key)
            if key in self.running:
                _log.info("cancelling job %s attempt %d", *key)
                self.running[key][0].cancel()

    async def _hand_back_all(self) -> None:
        if not self.running:
            return
        _log.info("shutting down: handing %d job(s) back", len(self.running))
        for attempt, _ in list(self.running.values()):
            attempt.hand_back()
        tasks = [task for _, task in list(self.running.values())]
        _, pending = await asyncio.wait(tasks, timeout=self._handback_timeout)
        for attempt, task in list(self.running.values()):
            if task in pending and attempt.process is not None:
                attempt.process.kill()  # did not checkpoint in time: the watchdog requeues it
        await asyncio.gather(*tasks, return_exceptions=True)


async def _start_retrying(consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
    delay = 0.5
    while True:
        try:
            await consumer.start()
            return
        except KafkaError as exc:
            if stop.is_set():
                raise
            _log.warning("Kafka not reachable (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
