"""The runner's take loop on the real broker, with failures injected through its dependencies.

A runner in this process (its own consumer group, so the stack's runner does not compete for
the partition position) takes a command from `job.requested.v1` while its publisher refuses
the first `started` events and its consumer's first offset commit fails. It must neither
wedge nor lose the command: the command comes again until `started` is out, the commit is
retried, and the group's committed offset ends past the command. Training is replaced by
waiting (the attempt's events and hand-back are the real ones).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from aiokafka.structs import TopicPartition

from vtp_contracts.catalog import JOB_CANCEL_REQUESTED, JOB_LIFECYCLE, JOB_REQUESTED
from vtp_contracts.events.jobs import JobCancelRequested, JobRequested
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.kafka import KafkaEventPublisher, PublishError
from vtp_runtime.metrics import Metrics
from vtp_trainer_runner.attempt import Attempt, AttemptDeps
from vtp_trainer_runner.reporter import Reporter
from vtp_trainer_runner.runner import Runner

pytestmark = pytest.mark.integration
DEADLINE_SECONDS = 90.0


class RefusingFirst:
    """The real publisher, but the first `refuse` publishes of a `started` event fail."""

    def __init__(self, real: KafkaEventPublisher, job_id: str, refuse: int) -> None:
        self.real, self.job_id, self.refuse = real, job_id, refuse
        self.sent: list[dict[str, Any]] = []

    async def publish(self, events: list[OutboundEvent]) -> None:
        mine = [json.loads(e.value) for e in events if e.topic == JOB_LIFECYCLE.topic]
        if self.refuse and any(m["job_id"] == self.job_id and m["status"] == "started" for m in mine):
            self.refuse -= 1
            raise PublishError("injected: broker refused `started`")
        await self.real.publish(events)
        self.sent += mine

    async def send_raw(self, *args: Any) -> None:
        await self.real.send_raw(*args)


class CommitFailsOnce:
    """A real AIOKafkaConsumer whose first commit raises, as after a rebalance."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer, self.failed, self.commits = consumer, False, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    async def commit(self, offsets: Any) -> None:
        if not self.failed:
            self.failed = True
            raise CommitFailedError("injected: the group rebalanced")
        await self._consumer.commit(offsets)
        self.commits += 1


class WaitingAttempt(Attempt):
    async def _run(self) -> None:
        while self.stop is None:  # noqa: ASYNC110  # cancel()/hand_back() only set a field
            await asyncio.sleep(0.05)
        await self._lifecycle("requeued" if self.stop == "requeue" else "cancelled")


async def _skip_history(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """Commit the group at the end of the topic: the runner under test sees only the command sent next."""
    consumer = AIOKafkaConsumer(
        JOB_REQUESTED.topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not consumer.assignment():
            assert time.monotonic() < deadline
            await consumer.getmany(timeout_ms=200)
        await consumer.seek_to_end()
        ends = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        await consumer.commit(ends)
        return ends
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        offset = await consumer.committed(tp)
        return -1 if offset is None else int(offset)
    finally:
        await consumer.stop()


async def test_started_refused_and_a_failed_commit_neither_wedge_nor_lose_the_command(stack: LocalStack) -> None:
    bootstrap = stack.cfg.kafka_bootstrap
    group = f"runner-failures-{uuid.uuid4().hex[:8]}"
    before = await _skip_history(bootstrap, group)
    real = KafkaEventPublisher(bootstrap, client_id="runner-failures")
    await real.start()
    data = JobRequested(
        job_id=uuid.uuid4(), project_id=uuid.uuid4(), attempt=1, name="injected", framework="ultralytics",
        task_type="detect", model="yolo11n", dataset_id=uuid.uuid4(), snapshot_id=uuid.uuid4(),
        requested_at=datetime.now(UTC),
    )  # fmt: skip
    publisher = RefusingFirst(real, str(data.job_id), refuse=2)
    consumers: list[CommitFailsOnce] = []

    def new_consumer(*topics: str, **kwargs: Any) -> Any:
        wrapped = CommitFailsOnce(AIOKafkaConsumer(*topics, **kwargs))
        consumers.append(wrapped)
        return wrapped

    deps = AttemptDeps(
        store=None,  # type: ignore[arg-type]  # training is replaced: the store is never used
        reporter=Reporter(publisher, attempts=1),  # type: ignore[arg-type]
        runner_id="runner-failures",
        work_root=Path("/nonexistent"),
        cache_dir=Path("/nonexistent"),
        cache_max_bytes=0,
        heartbeat_seconds=30,
        log_flush_seconds=30,
    )
    runner = Runner(
        deps, bootstrap, group, [[]], handback_timeout=10,
        dead_letters=DeadLetters(real, metrics=Metrics()), retry_pause=0.2,
        new_consumer=new_consumer, new_attempt=WaitingAttempt,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.create_task(runner.take_jobs(stop))
    try:
        command = make_event(JOB_REQUESTED, data, "tests")
        await real.publish([command])
        deadline = time.monotonic() + DEADLINE_SECONDS
        # The session's stack may resend another test's stuck command (the jobs service's queued
        # republish) to the same topic meanwhile: this runner takes it too, so look for ours.
        def taken() -> bool:
            return any(str(attempt.cmd.job_id) == str(data.job_id) for attempt, _ in runner.running.values())

        while not (consumers and consumers[0].commits and not runner.commands.uncommitted and taken()):
            assert not loop.done(), loop.exception() if loop.done() else None
            assert time.monotonic() < deadline, "the command was never taken and committed"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 60)
        await real.stop()
    mine = [m["status"] for m in publisher.sent if m["job_id"] == str(data.job_id)]
    assert mine == ["started", "requeued"]  # refused twice, then announced once; handed back at shutdown
    assert consumers[0].failed and publisher.refuse == 0
    after = {tp: await _committed(bootstrap, group, tp) for tp in before}
    assert all(after[tp] >= before[tp] for tp in before)
    assert sum(after[tp] - before[tp] for tp in before) >= 1  # past the command (and any resent one)


async def test_a_restarted_runner_reads_every_cancellation_again_without_a_consumer_group(stack: LocalStack) -> None:
    """No group: nothing is left on the broker per runner, and a restart reads the (small) topic from its start."""
    bootstrap = stack.cfg.kafka_bootstrap
    real = KafkaEventPublisher(bootstrap, client_id="cancel-reader")
    await real.start()
    job_id = uuid.uuid4()
    cancel = JobCancelRequested(job_id=job_id, project_id=uuid.uuid4(), attempt=1, requested_at=datetime.now(UTC))
    made: list[dict[str, Any]] = []

    def new_consumer(*topics: str, **kwargs: Any) -> AIOKafkaConsumer:
        made.append(kwargs)
        return AIOKafkaConsumer(*topics, **kwargs)

    try:
        await real.publish([make_event(JOB_CANCEL_REQUESTED, cancel, "tests")])
        for life in ("first", "after a restart"):
            runner = Runner(
                AttemptDeps(None, Reporter(real), f"cancel-reader-{life}", Path("/x"), Path("/x"), 0, 30, 30),  # type: ignore[arg-type]
                bootstrap, "trainer-runners", [[]], 10,
                dead_letters=DeadLetters(real, metrics=Metrics()), new_consumer=new_consumer,
            )  # fmt: skip
            stop = asyncio.Event()
            reader = asyncio.create_task(runner.watch_cancellations(stop))
            try:
                deadline = time.monotonic() + DEADLINE_SECONDS
                while not runner.cancelled.remembers((str(job_id), 1)):
                    assert not reader.done(), reader.exception() if reader.done() else None
                    assert time.monotonic() < deadline, f"the cancellation was not read ({life})"
                    await asyncio.sleep(0.1)
            finally:
                stop.set()
                await asyncio.wait_for(reader, 30)
    finally:
        await real.stop()
    assert [m["group_id"] for m in made] == [None, None]
