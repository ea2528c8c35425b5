"""The batch worker: one member of the `batchers` consumer group on `batch.requested.v1`.

Every inference replica runs one as a supervised background task. It takes a command only when
it has a free slot (pausing its partitions while full, so the group hands waiting batches to other
replicas) and commits the command's offset once the batch is claimed in the database. A worker
that dies after that stops renewing its lease and the watchdog (`requeue_expired`, on every
replica) sends the batch back to the group as its next attempt, which resumes after the last
recorded chunk. Claims are fenced by attempt: a redelivered or stale command changes nothing.
A malformed command goes to the dead-letter topic; a claim that fails on an outage comes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition

from vtp_contracts.catalog import BATCH_REQUESTED
from vtp_contracts.events.batches import BatchRequested
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_inference.service_layer.batch_run import BatchDeps, BatchRun
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_runtime.messaging.consuming import sleep_unless_stopped, start_retrying
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.supervision import Background, report_failure, report_ok

_log = logging.getLogger(__name__)
GROUP = "batchers"
TASK_NAME = "batch commands"


class BatchWorker:
    def __init__(self, deps: BatchDeps, bootstrap: str, slots: int, dead_letters: DeadLetters) -> None:
        self.deps, self._bootstrap, self.free, self._dead_letters = deps, bootstrap, slots, dead_letters
        self.running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.uncommitted: dict[TopicPartition, int] = {}
        self._slot_freed = asyncio.Event()

    def background(self) -> Background:
        return Background(TASK_NAME, self.take_batches)

    async def take_batches(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            BATCH_REQUESTED.topic,
            bootstrap_servers=self._bootstrap,
            group_id=GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self.deps.owner,
        )
        try:
            await start_retrying(consumer, stop)
            await self._loop(consumer, stop)
        finally:
            if stop.is_set():  # shutting down: the leases of running batches expire and others resume them
                for task in self.running.values():
                    task.cancel()
            await consumer.stop()

    async def _loop(self, consumer: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._commit(consumer)
            if self.free <= 0:
                consumer.pause(*consumer.assignment())
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), 0.5)
                continue
            consumer.resume(*consumer.paused())
            try:
                fetched = await consumer.getmany(timeout_ms=500, max_records=self.free)
            except KafkaError as exc:
                _log.warning("fetching batch commands failed: %s", exc)
                report_failure(exc)
                await sleep_unless_stopped(1.0, stop)
                continue
            if not self.uncommitted:
                report_ok()
            for partition, records in fetched.items():
                for record in records:
                    if not await self._take(record):
                        consumer.seek(partition, record.offset)  # this one and the rest come again
                        await sleep_unless_stopped(1.0, stop)
                        break
                    self.uncommitted[partition] = record.offset + 1
                    await self._commit(consumer)

    async def _commit(self, consumer: Any) -> None:
        assigned = consumer.assignment()
        for moved in [tp for tp in self.uncommitted if tp not in assigned]:
            del self.uncommitted[moved]  # its new owner reads on from the last commit (claims are fenced)
        if not self.uncommitted:
            return
        offsets = {tp: OffsetAndMetadata(offset, "") for tp, offset in self.uncommitted.items()}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            _log.warning("committing batch commands failed (%s); retrying", exc)
            report_failure(exc)
            return
        for tp, offset in offsets.items():
            if self.uncommitted.get(tp) == offset.offset:
                del self.uncommitted[tp]

    async def _take(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Claim one command and start its batch; False when the command must come again."""
        try:
            cmd: BatchRequested = decode_event(BATCH_REQUESTED, record.headers, record.value or b"").data
        except MalformedEvent as exc:
            try:
                await self._dead_letters.send(record, GROUP, f"malformed: {exc}", 1)
            except Exception as send_error:
                _log.warning("dead-lettering a batch command failed (%s); it comes again", send_error)
                return False
            return True
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
        self.free -= 1
        self.running[key] = asyncio.create_task(self._supervise(key, BatchRun(batch, d)), name=f"batch-{key[0]}")
        return True

    async def _supervise(self, key: tuple[str, int], run: BatchRun) -> None:
        try:
            await run.run()
        except Exception:  # the lease expires and the watchdog requeues it; log why
            _log.exception("batch %s attempt %d crashed in the worker", *key)
        finally:
            self.running.pop(key, None)
            self.free += 1
            self._slot_freed.set()
