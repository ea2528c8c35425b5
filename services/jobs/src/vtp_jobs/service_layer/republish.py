"""Queued jobs whose command never reached a runner are handed to the runners again.

An in-memory broker (the local Tansu) forgets its topics when it restarts, and with them any
`job.requested` no runner had taken yet. A job queued longer than the configured time, of which no
runner has said a word (no `started`, no heartbeat), gets the same command again: the same outbox
row is marked unpublished, so the same event (id, attempt, resume point) leaves once more, and the
attempt fencing stays as it was. Nothing is resent while commands still wait in Kafka: then the
runners are merely busy and the job's command is among those waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from vtp_jobs.domain.model import Status
from vtp_jobs.service_layer.dispatch import dispatch
from vtp_jobs.service_layer.events import NewUow

_log = logging.getLogger(__name__)
CLOCK_MARGIN = timedelta(seconds=5)


# Commands waiting in Kafka for a runner; None when that cannot be known right now.
WaitingCommands = Callable[[], Awaitable[int | None]]
# Whether this service has applied every lifecycle event sent before a time; None: cannot tell now.
HeardUntil = Callable[[datetime], Awaitable[bool | None]]


async def republish_untaken_jobs(
    new_uow: NewUow, after: timedelta, waiting_commands: WaitingCommands, lifecycle_read_until: HeardUntil
) -> int:
    """Resend the command of every job queued for longer than `after` with no runner on it.

    Only a command the relay published over `after` ago is resent, and only once no command waits
    in Kafka and every lifecycle event has been applied: a runner commits a command after its
    `started` is sent, so a job still queued then has no runner. A command published while these
    checks ran, or a `started` on its way, would otherwise look lost, and the attempt run twice.
    """
    now = datetime.now(UTC)
    cutoff = now - after
    async with new_uow() as uow:
        candidates = await uow.repo.queued_untaken_since(cutoff)
    if not candidates:
        return 0
    waiting = await waiting_commands()
    if waiting is None or waiting > 0:
        _log.info("%d job(s) queued for over %s; %s command(s) still wait for runners", len(candidates), after, waiting)
        return 0
    # Producers' clocks may run ahead: ask for everything sent until a little after now.
    if not await lifecycle_read_until(datetime.now(UTC) + CLOCK_MARGIN):
        return 0  # a runner's `started` may be on its way: judge next round
    resent = 0
    for job_id in candidates:
        async with new_uow() as uow:
            job = await uow.repo.lock(job_id)
            if job is None or job.status != Status.QUEUED or job.queued_at is None or job.queued_at >= cutoff:
                continue  # taken, cancelled or resent since the scan
            if job.last_heartbeat_at is not None and job.last_heartbeat_at >= cutoff:
                continue
            outcome = await uow.repo.resend_requested(job.id, job.attempt, sent_before=cutoff)
            if outcome in ("pending", "recent"):
                continue  # not sent yet (the relay is behind), or sent too recently to call lost
            if outcome == "missing":
                await dispatch(uow, job, resume=job.attempt > 1)  # the original row was pruned: rebuild it
            job.redispatch(now)
            await uow.repo.save(job)
            await uow.commit()
        resent += 1
        _log.warning("job %s attempt %d: queued with no runner for %s, command sent again", job.id, job.attempt, after)
    return resent
