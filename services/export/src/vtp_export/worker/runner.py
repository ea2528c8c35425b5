"""The exporter: one member of the `exporters` consumer group on `export.requested.v1`.

It takes a command only when it has a free slot; while full it pauses its partitions, so the
group hands waiting exports to other workers. A command's offset is committed once the export
is claimed in the export database (a worker that dies before that leaves the command to the
group; one that dies after stops renewing its lease, and the service's watchdog requeues the
export as its next attempt). Claims are fenced by attempt, so a redelivered or stale command
for an attempt that is not current changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from vtp_contracts.catalog import EXPORT_REQUESTED
from vtp_contracts.events.exports import ExportRequested
from vtp_export.adapters.toolchains import Toolchains
from vtp_export.service_layer import lifecycle
from vtp_export.service_layer.unit_of_work import NewUow
from vtp_export.settings import ExportSettings
from vtp_export.worker.attempt import ExportAttempt
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_runtime.storage import ObjectStore

_log = logging.getLogger(__name__)
GROUP = "exporters"


class Exporter:
    def __init__(self, settings: ExportSettings, new_uow: NewUow, store: ObjectStore, toolchains: Toolchains) -> None:
        self.settings, self.new_uow, self.store, self.toolchains = settings, new_uow, store, toolchains
        self.free = settings.exporter_slots
        self.running: dict[tuple[str, int], tuple[ExportAttempt, asyncio.Task[None]]] = {}
        self._slot_freed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            EXPORT_REQUESTED.topic,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self.settings.exporter_id,
        )
        await _start_retrying(consumer, stop)
        try:
            await self._take_exports(consumer, stop)
        finally:
            await self._hand_back_all()
            await consumer.stop()

    async def _take_exports(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.free <= 0:
                consumer.pause(*consumer.assignment())
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), 0.5)
                continue
            consumer.resume(*consumer.paused())
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=self.free)
            except KafkaError as exc:
                _log.warning("fetching export commands failed: %s", exc)
                await asyncio.sleep(1)
                continue
            for partition, records in batches.items():
                for record in records:
                    await self._take(record.headers, record.value or b"", stop)
                    await consumer.commit({partition: OffsetAndMetadata(record.offset + 1, "")})

    async def _take(self, headers: Sequence[tuple[str, bytes]], value: bytes, stop: asyncio.Event) -> None:
        try:
            cmd: ExportRequested = decode_event(EXPORT_REQUESTED, headers, value).data
        except MalformedEvent as exc:
            _log.error("skipping malformed export command: %s", exc)
            return
        key = (str(cmd.export_id), cmd.attempt)
        if key in self.running:
            return
        s = self.settings
        delay = 0.5
        while True:  # the claim must be decided before the offset moves on
            try:
                export = await lifecycle.claim(
                    self.new_uow, cmd.export_id, cmd.attempt, s.exporter_id, s.export_lease_seconds
                )
                break
            except Exception as exc:
                if stop.is_set():
                    raise
                _log.warning("claiming export %s failed (%s); retrying", cmd.export_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
        if export is None:
            _log.info("export %s attempt %d: not queued any more, skipped", *key)
            return
        attempt = ExportAttempt(cmd, s, self.new_uow, self.store, self.toolchains)
        self.free -= 1
        task = asyncio.create_task(self._supervise(key, attempt), name=f"export-{key[0]}-{key[1]}")
        self.running[key] = (attempt, task)

    async def _supervise(self, key: tuple[str, int], attempt: ExportAttempt) -> None:
        try:
            await attempt.run()
        except Exception:  # the lease expires and the watchdog requeues it; log why
            _log.exception("export %s attempt %d crashed in the worker", *key)
        finally:
            self.running.pop(key, None)
            self.free += 1
            self._slot_freed.set()

    async def _hand_back_all(self) -> None:
        """Shutting down: stop the children and give their exports back to the group now."""
        for attempt, task in list(self.running.values()):
            attempt.lost = True  # no completion from a child killed on purpose
            if attempt.child is not None:
                attempt.child.kill()
            task.cancel()
            s, cmd = self.settings, attempt.cmd
            with contextlib.suppress(Exception):
                await lifecycle.requeue_held(
                    self.new_uow,
                    cmd.export_id,
                    cmd.attempt,
                    s.exporter_id,
                    "exporter shut down",
                    s.export_max_attempts + 1,
                )
        await asyncio.gather(*(t for _, t in self.running.values()), return_exceptions=True)


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
