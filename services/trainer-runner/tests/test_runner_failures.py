"""The runner's take loop under injected failures: `started` not sent, commits failing, poison commands,
commands redelivered after their attempt finished.

The runtime's `FakeConsumer` and a hand-written publisher stand in for the Kafka consumer and the
publisher (both passed in as dependencies); the attempt is the real `Attempt` with its training
replaced by waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaConnectionError

from vtp_contracts.catalog import JOB_CANCEL_REQUESTED, JOB_LIFECYCLE, JOB_REQUESTED
from vtp_contracts.events.jobs import JobCancelRequested, JobRequested
from vtp_runtime.messaging.cloudevents import OutboundEvent, kafka_headers, make_event
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.kafka import PublishError
from vtp_runtime.messaging.testing import FakeConsumer, run_until, until
from vtp_runtime.metrics import Metrics
from vtp_runtime.supervision import Background, Backoff, Supervisor
from vtp_trainer_runner.attempt import Attempt, AttemptDeps
from vtp_trainer_runner.cancellations import Cancellations
from vtp_trainer_runner.finished import FinishedAttempts
from vtp_trainer_runner.reporter import Reporter
from vtp_trainer_runner.runner import Runner


class Record:
    def __init__(self, event: OutboundEvent, offset: int, timestamp: int | None = None) -> None:
        self.topic, self.partition, self.offset = event.topic, 0, offset
        self.key, self.value, self.headers = event.key.encode(), event.value, kafka_headers(event.headers)
        self.timestamp = timestamp


class FlakyPublisher:
    """Refuses the first `failures` publishes (with `error`), then keeps what it gets."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures, self.error = failures, error or PublishError("broker away")
        self.published: list[OutboundEvent] = []
        self.raw: list[tuple[str, dict[str, str]]] = []

    async def publish(self, events: list[OutboundEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.published += events

    async def send_raw(self, topic: str, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> None:
        self.raw.append((topic, {k: v.decode() for k, v in headers}))


class WaitingAttempt(Attempt):
    """The real attempt (events, `started`, hand-back) with training replaced by waiting to be stopped."""

    async def _run(self) -> None:
        while self.stop is None:  # noqa: ASYNC110  # cancel()/hand_back() only set a field
            await asyncio.sleep(0.005)
        await self._lifecycle("requeued" if self.stop == "requeue" else "cancelled")


class QuickAttempt(Attempt):
    """The real attempt with training that completes at once."""

    async def _run(self) -> None:
        await self._lifecycle("completed")


def command(attempt: int = 1, job_id: uuid.UUID | None = None) -> OutboundEvent:
    data = JobRequested(
        job_id=job_id or uuid.uuid4(),
        project_id=uuid.uuid4(),
        attempt=attempt,
        name="j",
        framework="ultralytics",
        task_type="detect",
        model="yolo11n",
        dataset_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        requested_at=datetime.now(UTC),
    )
    return make_event(JOB_REQUESTED, data, "jobs")


def runner(
    publisher: FlakyPublisher,
    jobs: FakeConsumer,
    cancels: FakeConsumer | None = None,
    max_tries: int = 3,
    slots: int = 1,
    attempt_type: type[Attempt] = WaitingAttempt,
) -> tuple[Runner, list[dict[str, Any]]]:
    made: list[dict[str, Any]] = []

    def new_consumer(topic: str, **kwargs: Any) -> FakeConsumer:
        made.append({"topic": topic, **kwargs})
        return jobs if topic == JOB_REQUESTED.topic else (cancels or FakeConsumer(topic))

    deps = AttemptDeps(
        store=None,  # type: ignore[arg-type]  # never reached: training is replaced
        reporter=Reporter(publisher, attempts=1),  # type: ignore[arg-type]
        runner_id="runner-test",
        work_root=Path("/nonexistent"),
        cache_dir=Path("/nonexistent"),
        cache_max_bytes=0,
        heartbeat_seconds=60,
        log_flush_seconds=60,
    )
    dead_letters = DeadLetters(publisher, max_tries=max_tries, metrics=Metrics())
    made_runner = Runner(
        deps,
        "kafka:9092",
        "trainer-runners",
        [[] for _ in range(slots)],
        handback_timeout=5,
        dead_letters=dead_letters,
        retry_pause=0.01,
        new_consumer=new_consumer,
        new_attempt=attempt_type,
    )
    return made_runner, made


def statuses(publisher: FlakyPublisher) -> list[str]:
    return [json.loads(e.value)["status"] for e in publisher.published if e.topic == JOB_LIFECYCLE.topic]


async def test_a_started_event_that_cannot_be_sent_gives_the_command_back_until_it_can() -> None:
    publisher = FlakyPublisher(failures=2)  # the broker refuses the first two `started`
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(command(), 0)])
    run, _ = runner(publisher, jobs)
    await run_until(run.take_jobs, lambda: bool(jobs.committed))
    assert jobs.committed == [1]  # committed only once `started` was out
    assert statuses(publisher) == ["started", "requeued"]  # one attempt ran; shutdown handed it back
    assert run.running == {} and publisher.raw == []  # an outage is never a dead letter


async def test_a_command_whose_start_keeps_failing_for_another_reason_is_dead_lettered() -> None:
    publisher = FlakyPublisher(failures=100, error=ValueError("event too large"))  # not an outage
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(command(), 0), Record(command(), 1)])
    run, _ = runner(publisher, jobs, max_tries=3)
    await run_until(run.take_jobs, lambda: bool(publisher.raw))
    [(topic, headers)] = publisher.raw
    assert topic == "job.requested.v1.dlq"
    assert headers["dlq-consumer-group"] == "trainer-runners" and headers["dlq-attempts"] == "3"
    assert headers["dlq-reason"] == "ValueError: event too large" and headers["dlq-original-offset"] == "0"


async def test_a_failed_commit_is_retried_and_the_loop_keeps_taking_jobs() -> None:
    publisher = FlakyPublisher()
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(command(), 0)], commit_failures=2)
    run, _ = runner(publisher, jobs)
    await run_until(run.take_jobs, lambda: jobs.committed == [1])
    assert statuses(publisher) == ["started", "requeued"]


async def test_the_take_loop_under_supervision_survives_a_crash_without_handing_jobs_back() -> None:
    publisher = FlakyPublisher()
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(command(), 0)])
    run, made = runner(publisher, jobs, slots=2)  # a free slot: it keeps fetching while the job runs
    original = jobs.getmany
    crashes = iter([False, False, True])  # the third fetch hits a bug

    async def getmany(**kwargs: Any) -> Any:
        if next(crashes, False):
            raise RuntimeError("bug in the take loop")
        return await original(**kwargs)

    jobs.getmany = getmany  # type: ignore[method-assign]
    sup = Supervisor(backoff=Backoff(initial=0.01, maximum=0.01))
    await run_until(lambda stop: sup.run(Background("job commands", run.take_jobs), stop), lambda: len(made) >= 2)
    assert sup.states["job commands"].restarts == 1
    assert statuses(publisher) == ["started", "requeued"]  # not handed back at the crash, only at shutdown


async def test_cancellations_are_read_without_a_consumer_group_and_stop_the_running_attempt() -> None:
    publisher = FlakyPublisher()
    cmd = command()
    job = JobRequested.model_validate_json(cmd.value)
    now = datetime.now(UTC)
    cancel = make_event(
        JOB_CANCEL_REQUESTED,
        JobCancelRequested(job_id=job.job_id, project_id=job.project_id, attempt=1, requested_at=now),
        "jobs",
    )
    old = make_event(
        JOB_CANCEL_REQUESTED,
        JobCancelRequested(job_id=uuid.uuid4(), project_id=job.project_id, attempt=1, requested_at=now),
        "jobs",
    )
    now_ms = int(time.time() * 1000)
    cancels = FakeConsumer(JOB_CANCEL_REQUESTED.topic, [Record(old, 0, now_ms - 8 * 24 * 3600 * 1000)])
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(cmd, 0)])
    run, made = runner(publisher, jobs, cancels)
    stop = asyncio.Event()
    loops = [asyncio.create_task(run.take_jobs(stop)), asyncio.create_task(run.watch_cancellations(stop))]
    try:
        await until(lambda: "started" in statuses(publisher))
        cancels.records.append(Record(cancel, 1, now_ms))
        await until(lambda: "cancelled" in statuses(publisher))
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*loops), 20)
    assert [m["group_id"] for m in made if m["topic"] == JOB_CANCEL_REQUESTED.topic] == [None]
    assert len(run.cancelled) == 1  # the 8-day-old cancellation was not kept


def test_cancellations_are_forgotten_after_the_memory() -> None:
    now = [1000.0]
    memory = Cancellations(memory_seconds=60, clock=lambda: now[0])
    assert memory.add(("a", 1), requested_at=995.0)
    assert not memory.add(("old", 1), requested_at=900.0)
    assert memory.remembers(("a", 1)) and not memory.remembers(("old", 1))
    now[0] = 1050.0
    assert memory.remembers(("a", 1))
    now[0] = 1056.0
    assert not memory.remembers(("a", 1)) and len(memory) == 0


async def test_a_broker_blip_marks_the_take_loop_failing_and_the_next_fetch_heals_it() -> None:
    publisher = FlakyPublisher()
    jobs = FakeConsumer(JOB_REQUESTED.topic, [])
    run, _ = runner(publisher, jobs)
    original = jobs.getmany
    fetches = iter([True, True, True])  # the first three fetches fail: the broker is away

    async def getmany(**kwargs: Any) -> Any:
        if next(fetches, False):
            raise KafkaConnectionError("broker away")
        return await original(**kwargs)

    jobs.getmany = getmany  # type: ignore[method-assign]
    sup = Supervisor(unhealthy_after=3)
    seen: list[bool] = []

    def watch() -> bool:
        state = sup.states.get("job commands")
        if state is not None:
            failing = bool(sup.failing())
            if not seen or seen[-1] != failing:
                seen.append(failing)
        return seen[-2:] == [True, False]

    await run_until(lambda stop: sup.run(Background("job commands", run.take_jobs), stop), watch)
    assert sup.states["job commands"].restarts == 0  # handled, reported, never a crash


async def test_jobs_are_handed_back_even_when_the_service_stops_while_the_take_loop_waits_to_restart() -> None:
    publisher = FlakyPublisher()
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(command(), 0)])
    run, _ = runner(publisher, jobs, slots=2)
    original = jobs.getmany
    calls = [0]

    async def getmany(**kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] > 1:
            raise RuntimeError("bug in the take loop")  # every fetch after the first crashes
        return await original(**kwargs)

    jobs.getmany = getmany  # type: ignore[method-assign]
    sup = Supervisor(backoff=Backoff(initial=3600.0, maximum=3600.0))  # it will wait out a long backoff
    stop = asyncio.Event()
    loop = asyncio.create_task(sup.run(Background("job commands", run.take_jobs), stop))
    await until(lambda: sup.states.get("job commands") is not None and sup.states["job commands"].restarts == 1)
    assert run.running  # the attempt goes on while the loop waits to restart
    stop.set()
    await asyncio.wait_for(loop, 20)
    await run.shutdown()  # the service's shutdown hook
    assert statuses(publisher) == ["started", "requeued"] and run.running == {}


def test_trainer_text_with_a_nul_character_is_made_storable_before_it_is_published() -> None:
    from vtp_trainer_runner.attempt import _text

    assert _text("loss\x00nan", 100) == "loss\ufffdnan"  # PostgreSQL refuses NUL: it would be a dead letter
    assert _text("x" * 50, 10) == "x" * 10


async def test_a_command_redelivered_after_its_attempt_finished_is_committed_past_and_not_run_again(
    caplog: Any,
) -> None:
    publisher = FlakyPublisher()
    cmd = command()
    job_id = JobRequested.model_validate_json(cmd.value).job_id
    # The group keeps rebalancing: no commit lands.
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(cmd, 0)], commit_failures=10**6)
    run, _ = runner(publisher, jobs, attempt_type=QuickAttempt)
    stop = asyncio.Event()
    loop = asyncio.create_task(run.take_jobs(stop))
    caplog.set_level(logging.INFO, logger="vtp_trainer_runner.runner")
    try:
        await until(lambda: statuses(publisher) == ["started", "completed"] and not run.running)
        assert jobs.committed == [] and run.finished.outcome((str(job_id), 1)) == "completed"
        # The partition comes back from its last commit, before the command: it is read once more.
        jobs.commit_failures, jobs.position = 0, 0
        skipped = f"job {job_id} attempt 1: already finished here (completed), not run again"
        await until(lambda: skipped in caplog.messages and not run.commands.uncommitted)
        assert jobs.committed and set(jobs.committed) == {1}  # committed past the redelivered command
        assert statuses(publisher) == ["started", "completed"]  # not run again
        jobs.records.append(Record(command(attempt=2, job_id=job_id), 1))  # a new attempt of the same job
        await until(lambda: statuses(publisher) == ["started", "completed"] * 2 and jobs.committed[-1] == 2)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 20)
    assert len(run.finished) == 2


async def test_an_attempt_that_never_announced_started_is_not_remembered_as_finished() -> None:
    publisher = FlakyPublisher(failures=1)  # the first `started` is refused: the command comes again
    cmd = command()
    job_id = JobRequested.model_validate_json(cmd.value).job_id
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(cmd, 0)])
    run, _ = runner(publisher, jobs, attempt_type=QuickAttempt)
    await run_until(run.take_jobs, lambda: bool(jobs.committed) and not run.running)
    assert statuses(publisher) == ["started", "completed"] and jobs.committed == [1]
    assert run.finished.outcome((str(job_id), 1)) == "completed" and len(run.finished) == 1


def test_finished_attempts_are_forgotten_after_the_memory_and_beyond_the_limit() -> None:
    now = [1000.0]
    memory = FinishedAttempts(memory_seconds=60, limit=3, clock=lambda: now[0])
    for n in range(4):
        memory.add((f"job-{n}", 1), "completed")
        now[0] += 1
    assert len(memory) == 3 and memory.outcome(("job-0", 1)) is None  # the oldest went first
    assert memory.outcome(("job-1", 1)) == "completed"
    memory.add(("job-1", 1), "failed")  # told again: it now ends last
    now[0] = 1062.5  # job-2 (ended at 1002) is past the memory, job-3 (1003) is not
    assert memory.outcome(("job-2", 1)) is None and memory.outcome(("job-3", 1)) == "completed"
    assert memory.outcome(("job-1", 1)) == "failed" and len(memory) == 2
    now[0] = 1070.0
    assert len(memory) == 0 and memory.outcome(("job-1", 1)) is None


async def test_an_attempts_events_run_in_the_trace_of_its_command_to_the_end() -> None:
    publisher = FlakyPublisher()
    cmd = command()
    jobs = FakeConsumer(JOB_REQUESTED.topic, [Record(cmd, 0)])
    run, _ = runner(publisher, jobs)
    await run_until(run.take_jobs, lambda: bool(jobs.committed))  # then shutdown hands it back
    assert statuses(publisher) == ["started", "requeued"]
    trace_id = cmd.headers["traceparent"].split("-")[1]
    parents = [e.headers["traceparent"] for e in publisher.published]
    assert {p.split("-")[1] for p in parents} == {trace_id}  # `requeued` too, sent at shutdown
    assert cmd.headers["traceparent"] not in parents  # each a span of its own in that trace
