"""The batch projection of runner events against a real PostgreSQL (its own database, the jobs migrations).

Batches are handed to `apply_batch` directly, as the Kafka subscriber would: duplicates inside a
batch and across redelivered batches, stale attempts, reordering and duplicate epochs.
Set VTP_TEST_POSTGRES_URL to run these against a server of your own without the whole stack.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.scratch_db import scratch_database
from vtp_contracts import EventEnvelope, TopicSpec
from vtp_contracts.base import ObjectRef
from vtp_contracts.catalog import CHECKPOINT_SAVED, EPOCH_PROGRESS, JOB_HEARTBEAT, JOB_LIFECYCLE, JOB_LOG
from vtp_contracts.events.jobs import CheckpointSaved, EpochProgress, JobHeartbeat, JobLifecycle, JobLog, LogLine
from vtp_jobs.adapters.orm import job_epochs, job_logs, outbox, processed_events
from vtp_jobs.bootstrap import MIGRATIONS
from vtp_jobs.domain.model import Job, Status
from vtp_jobs.service_layer.projection import apply_batch
from vtp_jobs.service_layer.unit_of_work import JobsUnitOfWork
from vtp_runtime.db.engine import make_engine, make_session_factory
from vtp_runtime.db.migrations import upgrade_to_head
from vtp_runtime.messaging.cloudevents import decode_event, make_event

pytestmark = pytest.mark.integration
# Runner clocks ahead of the events' own envelope times (progress counts as a sign of life at its
# envelope time), so heartbeat times decide `last_heartbeat_at` in these tests.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
def postgres_url(request: pytest.FixtureRequest) -> str:
    if url := os.environ.get("VTP_TEST_POSTGRES_URL"):
        return url
    return str(request.getfixturevalue("stack").cfg.postgres_admin_url)


@pytest.fixture(scope="module")
async def sessions(postgres_url: str) -> AsyncIterator[Sessions]:
    url = await scratch_database(postgres_url, "projection")
    await upgrade_to_head(url, MIGRATIONS)
    engine = make_engine(url)
    yield make_session_factory(engine)
    await engine.dispose()


class Runner:
    """Plays a runner of one job: builds its events as the subscriber would decode them."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def event(self, spec: TopicSpec, data: Any) -> EventEnvelope[Any]:
        out = make_event(spec, data, "trainer-runner")
        return decode_event(spec, out.headers, out.value)

    def _ids(self, attempt: int) -> dict[str, Any]:
        return {"job_id": self.job.id, "project_id": self.job.project_id, "attempt": attempt}

    def lifecycle(self, status: str, attempt: int = 1, **extra: Any) -> EventEnvelope[Any]:
        data = JobLifecycle(**self._ids(attempt), status=status, runner_id="r1", occurred_at=T0, **extra)
        return self.event(JOB_LIFECYCLE, data)

    def progress(self, epoch: int, attempt: int = 1, **metrics: float) -> EventEnvelope[Any]:
        data = EpochProgress(**self._ids(attempt), epoch=epoch, total_epochs=5, val_metrics=metrics)
        return self.event(EPOCH_PROGRESS, data)

    def beat(self, seconds: int, attempt: int = 1) -> EventEnvelope[Any]:
        data = JobHeartbeat(**self._ids(attempt), runner_id="r1", sent_at=T0 + timedelta(seconds=seconds))
        return self.event(JOB_HEARTBEAT, data)

    def log(self, message: str, attempt: int = 1) -> EventEnvelope[Any]:
        return self.event(JOB_LOG, JobLog(**self._ids(attempt), lines=[LogLine(time=T0, message=message)]))

    def checkpoint(self, kind: str, epoch: int, attempt: int = 1) -> EventEnvelope[Any]:
        ref = ObjectRef(uri=f"s3://vtp/{kind}-{epoch}.pt", sha256="ab" * 32, size_bytes=1)
        return self.event(
            CHECKPOINT_SAVED, CheckpointSaved(**self._ids(attempt), kind=kind, epoch=epoch, checkpoint=ref)
        )


def _uow(sessions: Sessions) -> JobsUnitOfWork:
    return JobsUnitOfWork(sessions, "jobs")


async def _runner(sessions: Sessions) -> Runner:
    job = Job(
        uuid.uuid4(), uuid.uuid4(), "j", "ultralytics", "detect", "yolo11n", uuid.uuid4(), uuid.uuid4(), {}, {}, 0, T0
    )
    job.status, job.queued_at = Status.QUEUED, T0
    async with _uow(sessions) as uow:
        await uow.repo.add(job)
        await uow.commit()
    return Runner(job)


async def _apply(sessions: Sessions, *events: EventEnvelope[Any]) -> None:
    await apply_batch(lambda: _uow(sessions), list(events))


async def _job(sessions: Sessions, runner: Runner) -> Job:
    async with _uow(sessions) as uow:
        job = await uow.repo.get(runner.job.project_id, runner.job.id)
    assert job is not None
    return job


async def _rows(sessions: Sessions, stmt: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.execute(stmt)).all())


async def test_duplicates_inside_and_across_batches_apply_once(sessions: Sessions):
    run = await _runner(sessions)
    p2 = run.progress(2, mAP50=0.2)
    batch = [run.lifecycle("started"), run.progress(1, mAP50=0.1), p2, p2, run.progress(2, mAP50=0.9), run.log("hi")]
    await _apply(sessions, *batch)
    await _apply(sessions, *batch)  # the whole batch redelivered
    job = await _job(sessions, run)
    assert (job.status, job.epoch, job.latest_metrics, job.runner_id) == (Status.RUNNING, 2, {"mAP50": 0.2}, "r1")
    epochs = await _rows(
        sessions, sa.select(job_epochs.c.epoch, job_epochs.c.val_metrics).where(job_epochs.c.job_id == job.id)
    )
    assert sorted(epochs) == [(1, {"mAP50": 0.1}), (2, {"mAP50": 0.2})], "one row per epoch, the first event wins"
    assert len(await _rows(sessions, sa.select(job_logs).where(job_logs.c.job_id == job.id))) == 1
    claimed = await _rows(
        sessions, sa.select(processed_events.c.event_id).where(processed_events.c.event_id.in_([e.id for e in batch]))
    )
    assert len(claimed) == 5


async def test_stale_attempt_is_fenced_off_after_a_requeue_in_the_same_batch(sessions: Sessions):
    run = await _runner(sessions)
    await _apply(
        sessions,
        run.lifecycle("started"),
        run.progress(1),
        run.checkpoint("last", 1),
        run.lifecycle("requeued"),
        run.progress(2),  # the lost runner carries on: stale from here
        run.checkpoint("last", 2),
        run.beat(5),
        run.log("late but kept as history"),
        run.log("from the future", attempt=3),
    )
    job = await _job(sessions, run)
    assert (job.status, job.attempt, job.epoch, job.runner_id, job.last_heartbeat_at) == (
        Status.QUEUED,
        2,
        1,
        None,
        None,
    )
    assert job.checkpoints["last"]["epoch"] == 1
    epochs = await _rows(
        sessions, sa.select(job_epochs.c.attempt, job_epochs.c.epoch).where(job_epochs.c.job_id == job.id)
    )
    assert epochs == [(1, 1)]
    logs = await _rows(sessions, sa.select(job_logs.c.message).where(job_logs.c.job_id == job.id))
    assert logs == [("late but kept as history",)]
    requested = await _rows(sessions, sa.select(outbox.c.topic).where(outbox.c.key == str(job.id)))
    assert requested == [("job.requested.v1",)], "the next attempt is dispatched in the same transaction"


async def test_out_of_order_events_and_heartbeats(sessions: Sessions):
    run = await _runner(sessions)
    await _apply(
        sessions, run.progress(3, mAP50=0.3), run.beat(30), run.progress(2), run.beat(20), run.lifecycle("started")
    )
    job = await _job(sessions, run)
    assert (job.status, job.epoch, job.latest_metrics) == (Status.RUNNING, 3, {"mAP50": 0.3})
    assert job.last_heartbeat_at == T0 + timedelta(seconds=30)
    await _apply(sessions, run.beat(10))  # an older heartbeat alone: time never moves back
    assert (await _job(sessions, run)).last_heartbeat_at == T0 + timedelta(seconds=30)
    await _apply(sessions, run.beat(40))
    assert (await _job(sessions, run)).last_heartbeat_at == T0 + timedelta(seconds=40)
    epochs = await _rows(sessions, sa.select(job_epochs.c.epoch).where(job_epochs.c.job_id == job.id))
    assert sorted(epochs) == [(2,), (3,)]


async def test_illegal_transitions_unknown_jobs_and_late_heartbeats_are_ignored(sessions: Sessions):
    run, other = await _runner(sessions), await _runner(sessions)
    stranger = Runner(
        Job(uuid.uuid4(), run.job.project_id, "x", "u", "detect", "m", uuid.uuid4(), uuid.uuid4(), {}, {}, 0, T0)
    )
    await _apply(sessions, run.lifecycle("started"), run.lifecycle("completed"), stranger.progress(1), other.beat(1))
    await _apply(sessions, run.lifecycle("started"), run.beat(99), run.progress(4), other.beat(2))
    job = await _job(sessions, run)
    assert job.status == Status.COMPLETED and job.finished_at == T0
    assert job.last_heartbeat_at != T0 + timedelta(seconds=99), "a heartbeat after the end is not applied"
    assert job.epoch == 4, "late epochs of the attempt are still recorded"
    beaten = await _job(sessions, other)
    assert (beaten.status, beaten.runner_id, beaten.last_heartbeat_at) == (
        Status.QUEUED,
        "r1",
        T0 + timedelta(seconds=2),
    )
