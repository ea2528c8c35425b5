"""Kafka subscribers and the heartbeat watchdog: events in, handler calls out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from faststream.kafka import KafkaBroker

from vtp_contracts.catalog import CHECKPOINT_SAVED, EPOCH_PROGRESS, JOB_HEARTBEAT, JOB_LIFECYCLE, JOB_LOG
from vtp_jobs.service_layer import events
from vtp_jobs.service_layer.events import CONSUMER, NewUow
from vtp_runtime.http.app import BackgroundTask
from vtp_runtime.messaging.consumer import subscribe

_log = logging.getLogger(__name__)


def register(broker: KafkaBroker, new_uow: NewUow) -> None:
    """One consumer group (`jobs`) per topic; replicas of the service share the partitions."""
    handlers = {
        JOB_LIFECYCLE: events.on_lifecycle,
        EPOCH_PROGRESS: events.on_progress,
        CHECKPOINT_SAVED: events.on_checkpoint,
        JOB_HEARTBEAT: events.on_heartbeat,
        JOB_LOG: events.on_log,
    }
    for spec, handler in handlers.items():
        subscribe(broker, spec, CONSUMER, lambda event, h=handler: h(new_uow, event))  # type: ignore[misc]


def heartbeat_watchdog(new_uow: NewUow, timeout: float, every: float) -> BackgroundTask:
    """A background task: requeue running jobs whose runner went silent."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await events.requeue_silent_jobs(new_uow, timedelta(seconds=timeout))
            except Exception:  # keep watching; the next round retries
                _log.exception("heartbeat watchdog round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    return run
