"""Runner events folded into job state. Each handler is idempotent by event id.

Every handler claims the event id in the same transaction as the change it
makes, locks the job row, and lets the domain decide; stale or illegal events
are logged and dropped, never applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from vtp_contracts import EventEnvelope
from vtp_contracts.catalog import JOB_LIFECYCLE
from vtp_contracts.events.jobs import CheckpointSaved, EpochProgress, JobHeartbeat, JobLifecycle, JobLog
from vtp_jobs.domain.model import Job, Outcome, Status
from vtp_jobs.service_layer.dispatch import dispatch
from vtp_jobs.service_layer.unit_of_work import JobsUnitOfWork

CONSUMER = "jobs"
_log = logging.getLogger(__name__)
NewUow = Callable[[], JobsUnitOfWork]


async def _apply(new_uow: NewUow, event: EventEnvelope[Any], change: Callable[[Job, JobsUnitOfWork], Any]) -> None:
    async with new_uow() as uow:
        if not await uow.claim(CONSUMER, event.id):
            return  # a redelivery: already applied
        job = await uow.repo.lock(event.data.job_id)
        if job is None or job.project_id != event.data.project_id:
            _log.warning("event %s for unknown job %s ignored", event.id, event.data.job_id)
            await uow.commit()  # remember the claim: the event will never become applicable
            return
        outcome: Outcome = await change(job, uow)
        if not outcome.applied:
            _log.info("event %s (%s) not applied to job %s: %s", event.id, event.type, job.id, outcome.reason)
        await uow.repo.save(job)
        await uow.commit()


async def on_lifecycle(new_uow: NewUow, event: EventEnvelope[Any]) -> None:
    data: JobLifecycle = event.data

    async def change(job: Job, uow: JobsUnitOfWork) -> Outcome:
        at = data.occurred_at
        if data.status == "started":
            return job.start(data.attempt, at, data.runner_id)
        if data.status == "failed" and data.error is not None:
            return job.fail(data.attempt, at, data.error.code, data.error.message, data.error.last_good_epoch)
        if data.checkpoint is not None:  # topics are unordered: the lifecycle event may beat checkpoint.saved
            job.record_checkpoint(data.attempt, "last", {**data.checkpoint.model_dump(), "attempt": data.attempt})
        if data.status == "requeued":  # a runner handed the job back (SIGTERM): next attempt resumes
            outcome = job.transition(Status.REQUEUED, data.attempt, at)
            if outcome.applied:
                job.requeue(datetime.now(UTC))
                await dispatch(uow, job, resume=True)
            return outcome
        return job.transition(Status(data.status), data.attempt, at)

    await _apply(new_uow, event, change)


async def on_progress(new_uow: NewUow, event: EventEnvelope[Any]) -> None:
    data: EpochProgress = event.data

    async def change(job: Job, uow: JobsUnitOfWork) -> Outcome:
        outcome = job.record_progress(
            data.attempt, data.epoch, data.total_epochs, data.val_metrics, data.eta_seconds, event.time
        )
        if outcome.applied:
            await uow.repo.add_epoch(
                job.id,
                data.attempt,
                data.epoch,
                {
                    "total_epochs": data.total_epochs,
                    "train_losses": data.train_losses,
                    "val_metrics": data.val_metrics,
                    "learning_rate": data.learning_rate,
                    "epoch_seconds": data.epoch_seconds,
                    "gpu_memory_mb": data.gpu_memory_mb,
                    "recorded_at": event.time,
                },
            )
        return outcome

    await _apply(new_uow, event, change)


async def on_checkpoint(new_uow: NewUow, event: EventEnvelope[Any]) -> None:
    data: CheckpointSaved = event.data
    info = {**data.checkpoint.model_dump(), "epoch": data.epoch, "metrics": data.metrics, "attempt": data.attempt}

    async def change(job: Job, uow: JobsUnitOfWork) -> Outcome:
        return job.record_checkpoint(data.attempt, data.kind, info)

    await _apply(new_uow, event, change)


async def on_heartbeat(new_uow: NewUow, event: EventEnvelope[Any]) -> None:
    data: JobHeartbeat = event.data

    async def change(job: Job, uow: JobsUnitOfWork) -> Outcome:
        return job.heartbeat(data.attempt, data.runner_id, data.sent_at)

    await _apply(new_uow, event, change)


async def on_log(new_uow: NewUow, event: EventEnvelope[Any]) -> None:
    data: JobLog = event.data

    async def change(job: Job, uow: JobsUnitOfWork) -> Outcome:
        if data.attempt > job.attempt:
            return Outcome(False, "future attempt")
        rows = [
            {"job_id": job.id, "attempt": data.attempt, "time": line.time, "level": line.level, "message": line.message}
            for line in data.lines
        ]
        await uow.repo.add_logs(rows)  # logs of older attempts are history, kept
        return Outcome(True)

    await _apply(new_uow, event, change)


async def requeue_silent_jobs(new_uow: NewUow, timeout: timedelta) -> int:
    """Requeue running jobs whose runner stopped sending heartbeats (runner or machine lost)."""
    now = datetime.now(UTC)
    async with new_uow() as uow:
        silent = await uow.repo.silent_since(now - timeout)
    requeued = 0
    for job_id in silent:
        async with new_uow() as uow:
            job = await uow.repo.lock(job_id)
            if job is None or job.status != Status.RUNNING or (job.last_heartbeat_at or now) >= now - timeout:
                continue  # changed since the scan
            lost_attempt = job.attempt
            job.transition(Status.REQUEUED, lost_attempt, now)
            await uow.publish(
                JOB_LIFECYCLE,
                JobLifecycle(
                    job_id=job.id,
                    project_id=job.project_id,
                    attempt=lost_attempt,
                    status="requeued",
                    runner_id=job.runner_id,
                    epoch=job.epoch,
                    occurred_at=now,
                ),
            )
            job.requeue(now)
            await dispatch(uow, job, resume=True)
            await uow.repo.save(job)
            await uow.commit()
            requeued += 1
            _log.warning("job %s: runner silent for %s, requeued as attempt %d", job.id, timeout, job.attempt)
    return requeued
