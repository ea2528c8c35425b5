"""Transactional outbox + idempotent consumer against the real broker and PostgreSQL.

The relay is a separate process killed at a failpoint (the moral equivalent of
``kill -9`` at the worst moment); after a restart the event reaches Kafka and
is applied exactly once, even though Kafka carries it twice.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.scratch_db import scratch_database
from vtp_contracts import EventEnvelope
from vtp_contracts.catalog import JOB_REQUESTED
from vtp_contracts.events.jobs import JobRequested
from vtp_localstack.stack import LocalStack
from vtp_runtime.db.delivery_tables import add_delivery_tables
from vtp_runtime.db.engine import make_engine, make_session_factory
from vtp_runtime.db.outbox import OUTBOX, pending_count
from vtp_runtime.db.unit_of_work import SqlUnitOfWork
from vtp_runtime.messaging.consumer import subscribe
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.metrics import Metrics

pytestmark = pytest.mark.integration

metadata = sa.MetaData()
add_delivery_tables(metadata)
jobs = sa.Table("demo_jobs", metadata, sa.Column("id", sa.Uuid, primary_key=True), sa.Column("name", sa.String))
applied = sa.Table("demo_applied", metadata, sa.Column("job_id", sa.Uuid), sa.Column("event_id", sa.String))


@pytest.fixture(scope="module")
async def engine(stack: LocalStack) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(await scratch_database(stack.cfg.postgres_admin_url, "delivery"))
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


def _relay(stack: LocalStack, engine: AsyncEngine, failpoint: str | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VTP_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "VTP_KAFKA_BOOTSTRAP_SERVERS": stack.cfg.kafka_bootstrap,
        "VTP_OUTBOX_POLL_SECONDS": "0.05",
        "VTP_FAILPOINTS": failpoint or "",
    }
    return subprocess.Popen([str(Path(sys.executable).parent / "vtp-outbox-relay")], env=env)


async def _request_job(engine: AsyncEngine) -> uuid.UUID:
    """The state change and its event, committed in one transaction."""
    job_id = uuid.uuid4()
    event = JobRequested(
        job_id=job_id,
        project_id=uuid.uuid4(),
        attempt=1,
        name="demo",
        framework="ultralytics",
        task_type="detect",
        model="yolo11n",
        dataset_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        requested_at=datetime.now(UTC),
    )
    async with SqlUnitOfWork(make_session_factory(engine), "jobs") as uow:
        await uow.session.execute(sa.insert(jobs).values(id=job_id, name="demo"))
        await uow.publish(JOB_REQUESTED, event)
        await uow.commit()
    return job_id


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while proc.poll() is None:
        assert asyncio.get_running_loop().time() < deadline, "relay did not exit"
        await asyncio.sleep(0.05)
    return proc.returncode


class IdempotentConsumer:
    """A consumer group that applies job.requested events once per event id."""

    def __init__(self, stack: LocalStack, engine: AsyncEngine, job_id: uuid.UUID) -> None:
        self.broker = KafkaBroker(stack.cfg.kafka_bootstrap)
        self.sessions = make_session_factory(engine)
        self.job_id = job_id
        self.deliveries: list[str] = []
        self.dead_letters: list[str] = []  # this test's group keeps them in memory, not in a .dlq topic
        group = f"test-{uuid.uuid4().hex[:8]}"
        subscribe(self.broker, JOB_REQUESTED, group, self.handle, DeadLetters(self, metrics=Metrics()))

    async def send_raw(self, topic: str, key: object, value: object, headers: object) -> None:
        self.dead_letters.append(topic)

    async def handle(self, event: EventEnvelope) -> None:
        if event.data.job_id != self.job_id:
            return  # other tests' events share the topic
        self.deliveries.append(event.id)
        async with SqlUnitOfWork(self.sessions, "consumer") as uow:
            if not await uow.claim("demo-consumer", event.id):
                return
            await uow.session.execute(sa.insert(applied).values(job_id=event.data.job_id, event_id=event.id))
            await uow.commit()

    async def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.deliveries) < count:
            assert asyncio.get_running_loop().time() < deadline, f"saw {len(self.deliveries)} of {count} deliveries"
            await asyncio.sleep(0.05)


async def _applied_rows(engine: AsyncEngine, job_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).where(applied.c.job_id == job_id)) or 0)


async def _published_at(engine: AsyncEngine) -> list[datetime | None]:
    async with engine.connect() as conn:
        return list((await conn.scalars(sa.select(OUTBOX.c.published_at).order_by(OUTBOX.c.id))).all())


async def _drain_then_stop(stack: LocalStack, engine: AsyncEngine) -> None:
    relay = _relay(stack, engine, None)
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while await pending_count(engine):
            assert asyncio.get_running_loop().time() < deadline, "relay did not drain the outbox"
            await asyncio.sleep(0.05)
    finally:
        relay.terminate()
        await _wait_exit(relay)


async def test_relay_killed_after_publish_before_commit_applies_once(stack: LocalStack, engine: AsyncEngine):
    job_id = await _request_job(engine)
    consumer = IdempotentConsumer(stack, engine, job_id)
    await consumer.broker.start()
    try:
        crashed = _relay(stack, engine, "outbox.after_publish")
        assert await _wait_exit(crashed) == 137
        assert await pending_count(engine) == 1, "the crash must leave the event unmarked"
        await consumer.wait_for(1)  # it did reach Kafka before the crash

        await _drain_then_stop(stack, engine)
        await consumer.wait_for(2)  # redelivered by the restarted relay...
        await asyncio.sleep(0.5)
    finally:
        await consumer.broker.stop()
    assert len(set(consumer.deliveries)) == 1, "both deliveries carry the same event id"
    assert await _applied_rows(engine, job_id) == 1, "...and applied exactly once"


async def test_relay_killed_before_publish_delivers_once_after_restart(stack: LocalStack, engine: AsyncEngine):
    await _drain_then_stop(stack, engine)  # start from an empty outbox
    job_id = await _request_job(engine)
    consumer = IdempotentConsumer(stack, engine, job_id)
    await consumer.broker.start()
    try:
        crashed = _relay(stack, engine, "outbox.before_publish")
        assert await _wait_exit(crashed) == 137
        assert await pending_count(engine) == 1
        await _drain_then_stop(stack, engine)
        await consumer.wait_for(1)
        await asyncio.sleep(1.0)  # nothing more arrives
    finally:
        await consumer.broker.stop()
    assert len(consumer.deliveries) == 1
    assert await _applied_rows(engine, job_id) == 1
    assert all(p is not None for p in await _published_at(engine))


async def test_state_change_and_event_roll_back_together(engine: AsyncEngine):
    before = await pending_count(engine)
    with pytest.raises(RuntimeError):
        async with SqlUnitOfWork(make_session_factory(engine), "jobs") as uow:
            await uow.session.execute(sa.insert(jobs).values(id=uuid.uuid4(), name="doomed"))
            await uow.publish(
                JOB_REQUESTED,
                JobRequested(
                    job_id=uuid.uuid4(),
                    project_id=uuid.uuid4(),
                    attempt=1,
                    name="x",
                    framework="ultralytics",
                    task_type="detect",
                    model="yolo11n",
                    dataset_id=uuid.uuid4(),
                    snapshot_id=uuid.uuid4(),
                    requested_at=datetime.now(UTC),
                ),
            )
            raise RuntimeError("handler failed before commit")
    assert await pending_count(engine) == before
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).where(jobs.c.name == "doomed")) == 0
