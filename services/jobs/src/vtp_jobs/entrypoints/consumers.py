"""Kafka subscribers, the heartbeat watchdog and the command republisher: events in, handler calls out."""

from __future__ import annotations

from datetime import datetime, timedelta

from faststream.kafka import KafkaBroker

from vtp_contracts.catalog import CHECKPOINT_SAVED, EPOCH_PROGRESS, JOB_HEARTBEAT, JOB_LIFECYCLE, JOB_LOG, JOB_REQUESTED
from vtp_jobs.adapters.kafka_progress import KafkaProgress
from vtp_jobs.service_layer import events
from vtp_jobs.service_layer.events import CONSUMER, NewUow
from vtp_jobs.service_layer.projection import apply_batch
from vtp_jobs.service_layer.republish import republish_untaken_jobs
from vtp_runtime.messaging.consumer import subscribe_batch
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.periodic import periodic
from vtp_runtime.supervision import Background

# Records per batch: large enough that a flood of 100 jobs' progress costs a handful of transactions,
# small enough that one batch's transaction stays short (row locks, redelivery on failure).
MAX_BATCH = 500


def register(broker: KafkaBroker, new_uow: NewUow, dead_letters: DeadLetters) -> None:
    """One subscriber in consumer group `jobs` for all runner topics; replicas share the partitions.

    A job's events on one topic share a partition (keyed by job id), so a batch keeps their order.
    An event that cannot be applied goes to its topic's dead-letter topic after a few tries.
    """
    topics = [JOB_LIFECYCLE, EPOCH_PROGRESS, CHECKPOINT_SAVED, JOB_HEARTBEAT, JOB_LOG]
    subscribe_batch(
        broker, topics, CONSUMER, lambda batch: apply_batch(new_uow, batch), dead_letters, max_records=MAX_BATCH
    )


def heartbeat_watchdog(new_uow: NewUow, timeout: float, every: float, progress: KafkaProgress) -> Background:
    """A background task: requeue running jobs whose runner went silent (once heartbeats are read up)."""

    async def heard_until(at: datetime) -> bool | None:
        return await progress.consumed_before(JOB_HEARTBEAT.topic, CONSUMER, at)

    return periodic(
        "heartbeat watchdog round",
        every,
        lambda: events.requeue_silent_jobs(new_uow, timedelta(seconds=timeout), heard_until),
    )


def command_republisher(
    new_uow: NewUow, after: float, every: float, progress: KafkaProgress, runner_group: str
) -> Background:
    """A background task: resend the command of queued jobs no runner took (see service_layer.republish)."""

    async def waiting() -> int | None:
        return await progress.waiting(JOB_REQUESTED.topic, runner_group)

    async def lifecycle_read_until(at: datetime) -> bool | None:
        return await progress.consumed_before(JOB_LIFECYCLE.topic, CONSUMER, at)

    return periodic(
        "queued republish round",
        every,
        lambda: republish_untaken_jobs(new_uow, timedelta(seconds=after), waiting, lifecycle_read_until),
    )
