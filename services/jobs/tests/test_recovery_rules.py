"""The jobs service's recovery judges with hand-written fakes: resending lost commands, and a
heartbeat watchdog that does not judge silence before it has read the heartbeats."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.structs import OffsetAndTimestamp

from vtp_jobs.adapters.kafka_progress import _first_at_or_after
from vtp_jobs.domain.model import Job, Status
from vtp_jobs.service_layer.events import requeue_silent_jobs
from vtp_jobs.service_layer.republish import republish_untaken_jobs

AFTER = timedelta(seconds=60)
LONG_AGO = datetime.now(UTC) - 3 * AFTER


def _job(status: Status, queued_ago: timedelta, heard_ago: timedelta | None = None, attempt: int = 1) -> Job:
    now = datetime.now(UTC)
    job = Job(
        uuid.uuid4(), uuid.uuid4(), "j", "ultralytics", "detect", "yolo11n", uuid.uuid4(), uuid.uuid4(), {}, {}, 0, now
    )
    job.status, job.attempt, job.queued_at = status, attempt, now - queued_ago
    job.last_heartbeat_at = now - heard_ago if heard_ago is not None else None
    return job


@dataclass
class FakeRepo:
    jobs: dict[uuid.UUID, Job]
    # (job, attempt) -> when its command row was published (None: not yet)
    outbox_rows: dict[tuple[uuid.UUID, int], datetime | None] = field(default_factory=dict)
    resent: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    saved: list[uuid.UUID] = field(default_factory=list)

    async def queued_untaken_since(self, cutoff: datetime) -> list[uuid.UUID]:
        return [
            j.id
            for j in self.jobs.values()
            if j.status == Status.QUEUED
            and j.queued_at is not None
            and j.queued_at < cutoff
            and (j.last_heartbeat_at is None or j.last_heartbeat_at < cutoff)
        ]

    async def silent_since(self, cutoff: datetime) -> list[uuid.UUID]:
        return [
            j.id
            for j in self.jobs.values()
            if j.status == Status.RUNNING and j.last_heartbeat_at is not None and j.last_heartbeat_at < cutoff
        ]

    async def lock(self, job_id: uuid.UUID) -> Job | None:
        return self.jobs.get(job_id)

    async def resend_requested(self, job_id: uuid.UUID, attempt: int, sent_before: datetime) -> str:
        if (job_id, attempt) not in self.outbox_rows:
            return "missing"
        published = self.outbox_rows[(job_id, attempt)]
        if published is None:
            return "pending"
        if published >= sent_before:
            return "recent"
        self.resent.append((job_id, attempt))
        self.outbox_rows[(job_id, attempt)] = None
        return "sent"

    async def save(self, job: Job) -> None:
        self.saved.append(job.id)


@dataclass
class FakeUow:
    repo: FakeRepo
    published: list[tuple[str, Any]]

    async def __aenter__(self) -> FakeUow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def publish(self, spec: Any, data: Any) -> str:
        self.published.append((spec.topic, data))
        return str(uuid.uuid4())

    async def commit(self) -> None:
        return None


def _uow_factory(repo: FakeRepo) -> tuple[Any, list[tuple[str, Any]]]:
    published: list[tuple[str, Any]] = []
    return (lambda: FakeUow(repo, published)), published


def _waiting(n: int | None) -> Any:
    async def waiting() -> int | None:
        return n

    return waiting


def _read_until(answer: bool | None) -> Any:
    async def read(at: datetime) -> bool | None:
        return answer

    return read


READ_UP = _read_until(True)


async def test_a_lost_command_is_resent_once_as_the_same_event():
    lost = _job(Status.QUEUED, queued_ago=2 * AFTER)
    repo = FakeRepo({lost.id: lost}, outbox_rows={(lost.id, 1): LONG_AGO})
    new_uow, published = _uow_factory(repo)
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(0), READ_UP) == 1
    assert repo.resent == [(lost.id, 1)] and published == []  # the same outbox row, not a new event
    assert lost.attempt == 1 and lost.status == Status.QUEUED
    # The wait restarts: the next round leaves it alone.
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(0), READ_UP) == 0
    assert repo.resent == [(lost.id, 1)]


async def test_nothing_is_resent_while_commands_wait_or_kafka_cannot_tell():
    waiting = _job(Status.QUEUED, queued_ago=2 * AFTER)
    repo = FakeRepo({waiting.id: waiting}, outbox_rows={(waiting.id, 1): LONG_AGO})
    new_uow, _ = _uow_factory(repo)
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(3), READ_UP) == 0
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(None), READ_UP) == 0
    assert repo.resent == []


async def test_nothing_is_resent_while_a_started_may_still_be_unread():
    """A runner commits the command once its `started` is sent: the command no longer waits, but
    the job is queued until the `started` is applied. Resending then would run the attempt twice."""
    taken = _job(Status.QUEUED, queued_ago=2 * AFTER)
    repo = FakeRepo({taken.id: taken}, outbox_rows={(taken.id, 1): LONG_AGO})
    new_uow, _ = _uow_factory(repo)
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(0), _read_until(False)) == 0
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(0), _read_until(None)) == 0
    assert repo.resent == []


async def test_jobs_a_runner_spoke_about_or_recently_queued_are_left_alone():
    fresh = _job(Status.QUEUED, queued_ago=AFTER / 2)
    heard = _job(Status.QUEUED, queued_ago=2 * AFTER, heard_ago=AFTER / 2)
    running = _job(Status.RUNNING, queued_ago=2 * AFTER, heard_ago=2 * AFTER)
    rows: dict[tuple[uuid.UUID, int], datetime | None] = {(j.id, 1): LONG_AGO for j in (fresh, heard)}
    repo = FakeRepo({j.id: j for j in (fresh, heard, running)}, outbox_rows=rows)
    new_uow, published = _uow_factory(repo)
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(0), READ_UP) == 0
    assert repo.resent == [] and published == []


async def test_a_command_not_yet_sent_or_sent_just_now_is_left_to_the_relay_and_runners():
    """Unpublished: the relay is behind and will send it. Published after the cutoff: it may be in
    a runner's hands right now (published while the other checks ran). Neither is resent."""
    unsent = _job(Status.QUEUED, queued_ago=2 * AFTER)
    just_sent = _job(Status.QUEUED, queued_ago=2 * AFTER)
    rows = {(unsent.id, 1): None, (just_sent.id, 1): datetime.now(UTC)}
    repo = FakeRepo({unsent.id: unsent, just_sent.id: just_sent}, outbox_rows=rows)
    new_uow, published = _uow_factory(repo)
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(0), READ_UP) == 0
    assert repo.resent == [] and published == [] and repo.saved == []


async def test_a_pruned_command_is_rebuilt_for_the_same_attempt():
    lost = _job(Status.QUEUED, queued_ago=2 * AFTER, attempt=3)
    repo = FakeRepo({lost.id: lost})
    new_uow, published = _uow_factory(repo)
    assert await republish_untaken_jobs(new_uow, AFTER, _waiting(0), READ_UP) == 1
    assert [(topic, data.attempt) for topic, data in published] == [("job.requested.v1", 3)]


async def test_silence_is_judged_only_once_heartbeats_are_read_up():
    silent = _job(Status.RUNNING, queued_ago=AFTER, heard_ago=2 * AFTER)
    repo = FakeRepo({silent.id: silent})
    new_uow, published = _uow_factory(repo)
    asked: list[datetime] = []

    def heard_until(answer: bool | None) -> Any:
        async def heard(at: datetime) -> bool | None:
            asked.append(at)
            return answer

        return heard

    assert await requeue_silent_jobs(new_uow, AFTER, heard_until(False)) == 0
    assert await requeue_silent_jobs(new_uow, AFTER, heard_until(None)) == 0
    assert silent.status == Status.RUNNING and silent.attempt == 1 and published == []
    assert all(datetime.now(UTC) - at >= AFTER / 2 for at in asked)
    assert await requeue_silent_jobs(new_uow, AFTER, heard_until(True)) == 1
    assert (silent.status, silent.attempt) == (Status.QUEUED, 2)
    assert [topic for topic, _ in published] == ["job.lifecycle.v1", "job.requested.v1"]


def test_no_record_that_recent_means_everything_up_to_the_end():
    """Kafka answers `offsets_for_times` with null when no record is that recent; Tansu with offset 0
    and timestamp -1. Both mean: everything up to the end must have been consumed."""
    assert _first_at_or_after(None, 7) == 7
    assert _first_at_or_after(OffsetAndTimestamp(0, -1), 7) == 7
    assert _first_at_or_after(OffsetAndTimestamp(4, 1_796_198_971_254), 7) == 4
