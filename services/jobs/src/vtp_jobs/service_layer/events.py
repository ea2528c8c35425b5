"""The jobs service's own reactions to runner (in)activity.

Runner events themselves are folded into job state in batches by
:mod:`vtp_jobs.service_layer.projection`; this module holds what both share
(the consumer name in the inbox) and the heartbeat watchdog's requeue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from vtp_contracts.catalog import JOB_LIFECYCLE
from vtp_contracts.events.jobs import JobLifecycle
from vtp_jobs.domain.model import Status
from vtp_jobs.service_layer.dispatch import dispatch
from vtp_jobs.service_layer.unit_of_work import JobsUnitOfWork

CONSUMER = "jobs"
_log = logging.getLogger(__name__)
NewUow = Callable[[], JobsUnitOfWork]


# Whether this service has applied every heartbeat sent before a time; None: cannot tell now.
HeardUntil = Callable[[datetime], Awaitable[bool | None]]


async def requeue_silent_jobs(new_uow: NewUow, timeout: timedelta, heard_until: HeardUntil | None = None) -> int:
    """Requeue running jobs whose runner stopped sending heartbeats (runner or machine lost).

    Silence counts only once this service has applied every heartbeat sent up to half the
    timeout ago: right after the jobs service restarts, its consumer is still catching up, and
    a running job would look silent only because its heartbeats wait unread in Kafka.
    """
    now = datetime.now(UTC)
    async with new_uow() as uow:
        silent = await uow.repo.silent_since(now - timeout)
    if silent and heard_until is not None and not await heard_until(now - timeout / 2):
        _log.info("%d job(s) look silent, but heartbeats are still being read; not judged yet", len(silent))
        return 0
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
