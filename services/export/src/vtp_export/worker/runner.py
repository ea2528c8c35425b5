"""The exporter: one member of the `exporters` consumer group on `export.requested.v1`.

It takes a command only when it has a free slot; while full it pauses its partitions, so the
group hands waiting exports to other workers. A command's offset is committed once the export
is claimed in the export database (a worker that dies before that leaves the command to the
group; one that dies after stops renewing its lease, and the service's watchdog requeues the
export as its next attempt). Claims are fenced by attempt, so a redelivered or stale command
for an attempt that is not current changes nothing.

Failures never end the loop quietly: a malformed command, or one whose claim keeps failing for
a reason other than an outage, goes to `export.requested.v1.dlq`; a claim that fails because
the database is away gives the command back (the partition is rewound to it); a commit that
fails is kept and retried on every pass. The loop runs as a supervised background task
(`background()`, named in `/health`): a crash restarts the loop while the running exports go
on, and they are handed back to the group only when the service shuts down (`shutdown()`).
The loop and the slots are the runtime's (:mod:`vtp_runtime.messaging.slot_consumer`,
:mod:`vtp_runtime.slots`); this module decides what taking a command means.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from vtp_contracts.catalog import EXPORT_REQUESTED
from vtp_contracts.events.exports import ExportRequested
from vtp_export.adapters.toolchains import Toolchains
from vtp_export.service_layer import lifecycle
from vtp_export.service_layer.unit_of_work import NewUow
from vtp_export.settings import ExportSettings
from vtp_export.worker.attempt import ExportAttempt
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.slot_consumer import ConsumerFactory, SlotConsumer
from vtp_runtime.slots import Slots
from vtp_runtime.storage import ObjectStore
from vtp_runtime.supervision import Background, report_failure
from vtp_runtime.transient import is_transient

_log = logging.getLogger(__name__)
GROUP = "exporters"
TASK_NAME = "export commands"
AttemptFactory = Callable[..., ExportAttempt]
AttemptKey = tuple[str, int]  # (export id, attempt)


class Exporter:
    def __init__(
        self,
        settings: ExportSettings,
        new_uow: NewUow,
        store: ObjectStore,
        toolchains: Toolchains,
        *,
        dead_letters: DeadLetters,
        retry_pause: float = 1.0,
        new_consumer: ConsumerFactory = AIOKafkaConsumer,
        new_attempt: AttemptFactory = ExportAttempt,
    ) -> None:
        self.settings, self.new_uow, self.store, self.toolchains = settings, new_uow, store, toolchains
        self._dead_letters, self._new_attempt = dead_letters, new_attempt
        self.slots: Slots[AttemptKey, ExportAttempt] = Slots(
            settings.exporter_slots, crashed="export %s attempt %d crashed in the worker", log=_log
        )  # a crashed attempt's lease expires and the watchdog requeues it
        self.commands = SlotConsumer(
            EXPORT_REQUESTED.topic,
            group=GROUP,
            bootstrap=settings.kafka_bootstrap_servers,
            client_id=settings.exporter_id,
            slots=self.slots,
            take=self._take,
            what=TASK_NAME,
            retry_pause=retry_pause,
            on_stop=self.shutdown,
            log=_log,
            new_consumer=new_consumer,
        )

    @property
    def running(self) -> dict[AttemptKey, tuple[ExportAttempt, asyncio.Task[None]]]:
        return self.slots.running

    def background(self) -> list[Background]:
        return [Background(TASK_NAME, self.take_exports)]

    async def take_exports(self, stop: asyncio.Event) -> None:
        """Take commands while slots are free; on shutdown hand every running export back."""
        await self.commands.run(stop)

    async def _take(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Claim one command and start its attempt; False when the command must come again."""
        try:
            cmd: ExportRequested = decode_event(EXPORT_REQUESTED, record.headers, record.value or b"").data
        except MalformedEvent as exc:
            return await self._dead_letter(record, f"malformed: {exc}", 1)
        key = (str(cmd.export_id), cmd.attempt)
        if key in self.running:
            return True
        s = self.settings
        try:
            export = await lifecycle.claim(
                self.new_uow, cmd.export_id, cmd.attempt, s.exporter_id, s.export_lease_seconds
            )
        except Exception as exc:
            return await self._not_claimed(record, key, exc)
        self._dead_letters.succeeded(record, GROUP)
        if export is None:
            _log.info("export %s attempt %d: not queued any more, skipped", *key)
            return True
        attempt = self._new_attempt(cmd, s, self.new_uow, self.store, self.toolchains)
        self.slots.start(key, attempt, name=f"export-{key[0]}-{key[1]}")
        return True

    async def _not_claimed(self, record: ConsumerRecord[Any, Any], key: AttemptKey, error: Exception) -> bool:
        """The claim failed: an outage gives the command back; any other failure counts a try."""
        _log.warning("claiming export %s attempt %d failed (%s)", *key, error)
        report_failure(error)
        if is_transient(error):
            return False
        tries = self._dead_letters.failed_try(record, GROUP)
        if tries < self._dead_letters.max_tries:
            return False
        return await self._dead_letter(record, f"{type(error).__name__}: {error}", tries)

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], reason: str, tries: int) -> bool:
        """Send `record` to the dead-letter topic; False (it comes again) if Kafka refuses."""
        try:
            await self._dead_letters.send(record, GROUP, reason, tries)
        except Exception as exc:
            _log.warning("dead-lettering an export command failed (%s); it comes again", exc)
            report_failure(exc)
            return False
        return True

    async def shutdown(self) -> None:
        """Stop the children and give their exports back to the group now; also a shutdown hook,
        for when the take loop was waiting out a restart backoff as the service stopped."""
        if not self.running:
            return
        _log.info("shutting down: handing %d export(s) back", len(self.running))
        s = self.settings
        never_fails = s.export_max_attempts + 1  # a shutdown is not the export's fault
        for attempt, task in list(self.running.values()):
            attempt.lost = True  # no completion from a child killed on purpose
            if attempt.child is not None:
                attempt.child.kill()
            task.cancel()
            cmd = attempt.cmd
            try:
                await lifecycle.requeue_held(
                    self.new_uow, cmd.export_id, cmd.attempt, s.exporter_id, "exporter shut down", never_fails
                )
            except Exception as exc:  # the lease then expires and the watchdog requeues it
                _log.warning("handing export %s back failed (%s); the watchdog requeues it", cmd.export_id, exc)
        await asyncio.gather(*(t for _, t in list(self.running.values())), return_exceptions=True)
