"""The batch worker: one member of the `batchers` consumer group on `batch.requested.v1`.

Every inference replica runs one as a supervised background task. It takes a command only when
it has a free slot (pausing its partitions while full, so the group hands waiting batches to other
replicas) and commits the command's offset once the batch is claimed in the database. A worker
that dies after that stops renewing its lease and the watchdog (`requeue_expired`, on every
replica) sends the batch back to the group as its next attempt, which resumes after the last
recorded chunk. Claims are fenced by attempt: a redelivered or stale command changes nothing.
A malformed command goes to the dead-letter topic; a claim that fails on an outage comes again.
The claim runs in the command's trace context, as a subscriber's handler does, and the batch as a
span of it (:class:`~vtp_inference.service_layer.batch_run.BatchRun`).
The take loop and the slots are the runtime's (:mod:`vtp_runtime.messaging.slot_consumer`,
:mod:`vtp_runtime.slots`); this module decides what taking a command means.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.structs import ConsumerRecord

from vtp_contracts.catalog import BATCH_REQUESTED
from vtp_contracts.events.batches import BatchRequested
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_inference.service_layer.batch_run import BatchDeps, BatchRun
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.slot_consumer import SlotConsumer
from vtp_runtime.slots import Slots
from vtp_runtime.supervision import Background, report_failure
from vtp_runtime.tracing import CURRENT, TraceContext, parse

_log = logging.getLogger(__name__)
GROUP = "batchers"
TASK_NAME = "batch commands"
BatchKey = tuple[str, int]  # (batch id, attempt)


class BatchWorker:
    def __init__(self, deps: BatchDeps, bootstrap: str, slots: int, dead_letters: DeadLetters) -> None:
        self.deps, self._dead_letters = deps, dead_letters
        self.slots: Slots[BatchKey, BatchRun] = Slots(
            slots, crashed="batch %s attempt %d crashed in the worker", log=_log
        )  # a crashed batch's lease expires and the watchdog requeues it
        self.commands = SlotConsumer(
            BATCH_REQUESTED.topic,
            group=GROUP,
            bootstrap=bootstrap,
            client_id=deps.owner,
            slots=self.slots,
            take=self._take,
            what=TASK_NAME,
            on_stop=self._stop_running,
            log=_log,
        )

    @property
    def running(self) -> dict[BatchKey, tuple[BatchRun, asyncio.Task[None]]]:
        return self.slots.running

    def background(self) -> Background:
        return Background(TASK_NAME, self.take_batches)

    async def take_batches(self, stop: asyncio.Event) -> None:
        await self.commands.run(stop)

    async def _stop_running(self) -> None:
        """Shutting down: the leases of running batches expire and others resume them."""
        for _, task in self.running.values():
            task.cancel()

    async def _take(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Claim one command and start its batch; False when the command must come again."""
        try:
            event = decode_event(BATCH_REQUESTED, record.headers, record.value or b"")
        except MalformedEvent as exc:
            try:
                await self._dead_letters.send(record, GROUP, f"malformed: {exc}", 1)
            except Exception as send_error:
                _log.warning("dead-lettering a batch command failed (%s); it comes again", send_error)
                return False
            return True
        parent = parse(event.traceparent, event.tracestate)
        token = CURRENT.set(parent)  # the batch's task copies it: its run is a span of this trace
        try:
            return await self._claim(event.data, parent)
        finally:
            CURRENT.reset(token)

    async def _claim(self, cmd: BatchRequested, parent: TraceContext | None) -> bool:
        key = (str(cmd.batch_id), cmd.attempt)
        if key in self.running:
            return True
        d = self.deps
        try:
            batch = await lifecycle.claim(d.new_uow, cmd.batch_id, cmd.attempt, d.owner, d.lease_seconds)
        except Exception as exc:  # the database away: the command comes again
            _log.warning("claiming batch %s attempt %d failed (%s)", *key, exc)
            report_failure(exc)
            return False
        if batch is None:
            _log.info("batch %s attempt %d: not queued any more, skipped", *key)
            return True
        self.slots.start(key, BatchRun(batch, d, parent), name=f"batch-{key[0]}")
        return True
