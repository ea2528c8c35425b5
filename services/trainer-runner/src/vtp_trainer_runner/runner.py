"""The runner: one member of the `trainer-runners` consumer group on `job.requested.v1`.

It takes a job only when it has a free slot (one per GPU, or `cpu_slots`); while
full it pauses its partitions, so the group hands waiting jobs to other runners.
A command's offset is committed once the attempt has announced `started`: a
runner that dies before that leaves the command to another runner, one that dies
after is noticed by the jobs service's heartbeat watchdog. An attempt that cannot
announce `started` gives its command back (the partition is rewound to it), and a
commit that fails is retried on every pass until it succeeds or the partition moves
to another runner. Every runner reads `job.cancel-requested.v1` (see
:mod:`~vtp_trainer_runner.cancellations`), so the holder of a job sees its
cancellation and the others remember not to start it. A command that comes again
for an attempt this runner already finished (Kafka redelivers after a commit lost in a
rebalance) is skipped: finished attempts are remembered (see
:mod:`~vtp_trainer_runner.finished`). On shutdown (SIGTERM) it
stops taking jobs, kills its spare children and hands the running jobs back: they
checkpoint and end `requeued`. With a `SparePool`, each free slot has a warm child waiting.
Both loops run as supervised background tasks (`background()`). The take loop and the slots are
the runtime's (:mod:`vtp_runtime.messaging.slot_consumer`, :mod:`vtp_runtime.slots`); this module
decides what taking a command means.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from vtp_contracts.catalog import JOB_CANCEL_REQUESTED, JOB_REQUESTED
from vtp_contracts.events.jobs import JobRequested
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.slot_consumer import ConsumerFactory, SlotConsumer
from vtp_runtime.slots import Slots
from vtp_runtime.supervision import Background, report_failure
from vtp_runtime.transient import is_transient
from vtp_trainer_runner.attempt import Attempt, AttemptDeps
from vtp_trainer_runner.cancellations import AttemptKey, Cancellations, read_cancellations
from vtp_trainer_runner.finished import UNREPORTED, FinishedAttempts
from vtp_trainer_runner.spares import SparePool

_log = logging.getLogger(__name__)
AttemptFactory = Callable[..., Attempt]


class Runner:
    def __init__(
        self,
        deps: AttemptDeps,
        bootstrap: str,
        group: str,
        gpu_slots: Sequence[list[int]],
        handback_timeout: float,
        spares: SparePool | None = None,
        *,
        dead_letters: DeadLetters,
        cancel_memory_seconds: float = 7 * 24 * 3600.0,
        finished_memory_seconds: float = 7 * 24 * 3600.0,
        retry_pause: float = 1.0,
        new_consumer: ConsumerFactory = AIOKafkaConsumer,
        new_attempt: AttemptFactory = Attempt,
    ) -> None:
        self.deps, self._bootstrap, self._group = deps, bootstrap, group
        self._gpus = list(gpu_slots)  # per slot: the GPUs it owns
        self._handback_timeout = handback_timeout
        self._spares = spares
        self._dead_letters, self._pause = dead_letters, retry_pause
        self._new_consumer, self._new_attempt = new_consumer, new_attempt
        self.cancelled = Cancellations(cancel_memory_seconds)
        self.finished = FinishedAttempts(finished_memory_seconds)
        # A crashed attempt's terminal event is lost; with no more heartbeats the watchdog requeues it.
        self.slots: Slots[AttemptKey, Attempt] = Slots(
            len(self._gpus), crashed="job %s attempt %d ended without reporting how", log=_log, ended=self._ended
        )
        self.commands = SlotConsumer(
            JOB_REQUESTED.topic,
            group=group,
            bootstrap=bootstrap,
            client_id=deps.runner_id,
            slots=self.slots,
            take=self._take,
            what="job commands",
            retry_pause=retry_pause,
            on_start=spares.start if spares is not None else None,  # they warm up while the consumer joins
            on_stop=self.shutdown,
            log=_log,
            new_consumer=new_consumer,
        )

    @property
    def running(self) -> dict[AttemptKey, tuple[Attempt, asyncio.Task[None]]]:
        return self.slots.running

    def background(self) -> list[Background]:
        return [Background("job commands", self.take_jobs), Background("cancellations", self.watch_cancellations)]

    async def take_jobs(self, stop: asyncio.Event) -> None:
        """Take commands while slots are free; on shutdown hand every running job back."""
        await self.commands.run(stop)

    async def shutdown(self) -> None:
        """Kill the spares and hand every running job back; also a shutdown hook, for when the
        take loop was waiting out a restart backoff as the service stopped."""
        if self._spares is not None:
            await self._spares.close()  # first: attempts ending now must not start new spares
        await self._hand_back_all()

    async def _take(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Start an attempt for one command; False when it must come again (`started` not sent)."""
        try:
            cmd: JobRequested = decode_event(JOB_REQUESTED, record.headers, record.value or b"").data
        except MalformedEvent as exc:
            await self._dead_letters.send(record, self._group, f"malformed: {exc}", 1)
            return True
        key = (str(cmd.job_id), cmd.attempt)
        if self.cancelled.remembers(key) or key in self.running:
            _log.info("job %s attempt %d: cancelled or already here, not started", *key)
            return True
        if (outcome := self.finished.outcome(key)) is not None:  # a redelivery: never run an attempt twice
            _log.info("job %s attempt %d: already finished here (%s), not run again", *key, outcome)
            return True
        slot = self.slots.reserve()
        try:
            spare = await self._spares.take(slot) if self._spares is not None else None
            attempt = self._new_attempt(cmd, self.deps, self._gpus[slot], spare=spare)
        except BaseException:
            self.slots.unreserve(slot)
            raise
        task = self.slots.start(key, attempt, slot, name=f"job-{key[0]}-{key[1]}")
        announced = asyncio.ensure_future(attempt.started.wait())
        await asyncio.wait({announced, task}, return_when=asyncio.FIRST_COMPLETED)
        announced.cancel()
        if attempt.started.is_set():
            return True
        return await self._not_started(record, attempt.start_error or RuntimeError("ended before `started`"))

    async def _not_started(self, record: ConsumerRecord[Any, Any], error: BaseException) -> bool:
        """The attempt could not announce `started`: the command comes again, or is a dead letter."""
        report_failure(error)
        if is_transient(error):
            return False
        tries = self._dead_letters.failed_try(record, self._group)
        if tries < self._dead_letters.max_tries:
            return False
        await self._dead_letters.send(record, self._group, f"{type(error).__name__}: {error}", tries)
        return True

    async def _ended(self, key: AttemptKey, attempt: Attempt, slot: int) -> None:
        """An attempt ended (it has left `running`); before its slot is free again."""
        if attempt.started.is_set():  # one that never announced `started` gives its command back
            self.finished.add(key, attempt.outcome or UNREPORTED)
        if self._spares is not None:  # the slot's next attempt then finds the new spare
            await self._spares.release(slot, attempt.spare)

    async def watch_cancellations(self, stop: asyncio.Event) -> None:
        """Read every cancellation (no consumer group: see cancellations.py) and act on this runner's."""
        consumer = self._new_consumer(
            JOB_CANCEL_REQUESTED.topic,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self.deps.runner_id,
        )
        await read_cancellations(consumer, stop, self._cancel, self._pause)

    def _cancel(self, key: AttemptKey, at: float) -> None:
        if self.cancelled.add(key, at) and key in self.running:
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
