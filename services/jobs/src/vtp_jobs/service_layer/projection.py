"""Runner events folded into job state, a batch at a time, each batch in one transaction.

Kafka hands over what one fetch returned from the five runner topics. The batch's
event ids are claimed together (a redelivered batch, or a duplicate inside one, is
applied once), the jobs it touches are locked together, each job's events are
folded into its aggregate in arrival order (each partition keeps its order; the
domain decides, and stale or illegal events are logged and dropped), and the
changes are written back set-wise. If anything fails, the transaction rolls back
and the whole batch is delivered again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vtp_contracts import EventEnvelope
from vtp_contracts.events.jobs import CheckpointSaved, EpochProgress, JobHeartbeat, JobLifecycle, JobLog
from vtp_jobs.adapters.batch_repository import Beat, JobHead
from vtp_jobs.adapters.repository import row_values
from vtp_jobs.domain.model import APPLIED, Job, Outcome, Status, heartbeat_outcome
from vtp_jobs.service_layer.dispatch import dispatch
from vtp_jobs.service_layer.events import CONSUMER, NewUow
from vtp_jobs.service_layer.unit_of_work import JobsUnitOfWork

_log = logging.getLogger(__name__)
Event = EventEnvelope[Any]


@dataclass
class _Rows:
    """Rows a batch adds, collected while folding and inserted at the end."""

    epochs: dict[tuple[uuid.UUID, int, int], dict[str, Any]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)


async def apply_batch(new_uow: NewUow, events: Sequence[Event]) -> None:
    """Apply a batch of runner events exactly once each, in one transaction."""
    unique = _first_of_each_id(events)
    # Heartbeats are not claimed in the inbox: stamping the newest heartbeat time is idempotent by
    # itself (GREATEST), so a replay is harmless, and they are most of the traffic (and of the inbox).
    beats = [e for e in unique if isinstance(e.data, JobHeartbeat)]
    others = [e for e in unique if not isinstance(e.data, JobHeartbeat)]
    async with new_uow() as uow:
        fresh = await uow.claim_many(CONSUMER, [e.id for e in others])
        todo = [e for e in others if e.id in fresh]
        heads = await uow.batch.lock({e.data.job_id for e in [*todo, *beats]})
        todo, beats = [e for e in todo if _known(heads, e)], [e for e in beats if _known(heads, e)]
        jobs = await uow.batch.load({e.data.job_id for e in todo if not isinstance(e.data, JobLog)})
        before = {job_id: row_values(job) for job_id, job in jobs.items()}
        rows = _Rows()
        for event in todo:
            job_id = event.data.job_id
            outcome = await _fold(uow, event, jobs.get(job_id), heads[job_id], rows)
            if not outcome.applied:
                _log.info("event %s (%s) not applied to job %s: %s", event.id, event.type, job_id, outcome.reason)
        await uow.batch.save_changed((before[job_id], job) for job_id, job in jobs.items())
        await uow.batch.add_epochs(list(rows.epochs.values()))
        await uow.batch.add_logs(rows.logs)
        await uow.batch.record_heartbeats(_accepted(beats, heads, jobs))
        await uow.commit()


def _first_of_each_id(events: Sequence[Event]) -> list[Event]:
    """Drop redeliveries inside the batch, keeping the arrival order."""
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            unique.append(event)
    return unique


def _known(heads: dict[uuid.UUID, JobHead], event: Event) -> bool:
    head = heads.get(event.data.job_id)
    if head is None or head.project_id != event.data.project_id:
        # Claimed all the same: the event will never become applicable.
        _log.warning("event %s for unknown job %s ignored", event.id, event.data.job_id)
        return False
    return True


async def _fold(uow: JobsUnitOfWork, event: Event, job: Job | None, head: JobHead, rows: _Rows) -> Outcome:
    """Apply one event to its job's aggregate (a log line needs only the job's attempt)."""
    data = event.data
    if isinstance(data, JobLog):
        current = job.attempt if job is not None else head.attempt
        if data.attempt > current:
            return Outcome(False, "future attempt")
        rows.logs += [  # logs of older attempts are history, kept
            {"job_id": data.job_id, "attempt": data.attempt, "time": x.time, "level": x.level, "message": x.message}
            for x in data.lines
        ]
        return APPLIED
    assert job is not None  # loaded for every event but logs and heartbeats
    if isinstance(data, JobLifecycle):
        return await _lifecycle(uow, job, data)
    if isinstance(data, EpochProgress):
        return _progress(job, data, event.time, rows)
    if isinstance(data, CheckpointSaved):
        info = {**data.checkpoint.model_dump(), "epoch": data.epoch, "metrics": data.metrics, "attempt": data.attempt}
        return job.record_checkpoint(data.attempt, data.kind, info)
    return Outcome(False, f"unexpected event type {event.type}")


async def _lifecycle(uow: JobsUnitOfWork, job: Job, data: JobLifecycle) -> Outcome:
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
            await dispatch(uow, job, resume=True)  # staged in this batch's transaction (outbox)
        return outcome
    return job.transition(Status(data.status), data.attempt, at)


def _progress(job: Job, data: EpochProgress, at: datetime, rows: _Rows) -> Outcome:
    outcome = job.record_progress(data.attempt, data.epoch, data.total_epochs, data.val_metrics, data.eta_seconds, at)
    if outcome.applied:  # the first event of an epoch wins, as the table's ON CONFLICT DO NOTHING does
        rows.epochs.setdefault(
            (job.id, data.attempt, data.epoch),
            {
                "job_id": job.id,
                "attempt": data.attempt,
                "epoch": data.epoch,
                "total_epochs": data.total_epochs,
                "train_losses": data.train_losses,
                "val_metrics": data.val_metrics,
                "learning_rate": data.learning_rate,
                "epoch_seconds": data.epoch_seconds,
                "gpu_memory_mb": data.gpu_memory_mb,
                "recorded_at": at,
            },
        )
    return outcome


def _accepted(beats: list[Event], heads: dict[uuid.UUID, JobHead], jobs: dict[uuid.UUID, Job]) -> list[Beat]:
    """The newest heartbeat per job attempt that counts against the job's state after the batch."""
    newest: dict[uuid.UUID, Beat] = {}
    for event in beats:
        data: JobHeartbeat = event.data
        job = jobs.get(data.job_id)
        status, current = (job.status, job.attempt) if job else (heads[data.job_id].status, heads[data.job_id].attempt)
        outcome = heartbeat_outcome(status, current, data.attempt)
        if not outcome.applied:
            _log.info("heartbeat %s not applied to job %s: %s", event.id, data.job_id, outcome.reason)
            continue
        held = newest.get(data.job_id)
        if held is None or data.sent_at >= held.sent_at:
            newest[data.job_id] = Beat(data.job_id, data.attempt, data.runner_id, data.sent_at)
    return list(newest.values())
