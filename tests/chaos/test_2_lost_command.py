"""A `job.requested` that never reaches a runner (lost with the broker) is sent again.

Staged exactly: the jobs service's standalone outbox relay is stopped, a job is submitted, and
its command row is marked published without being sent (what a broker that forgets its topics
leaves behind). With the relay back, the job would wait forever; the jobs service notices the job
queued with no runner for `VTP_QUEUED_REPUBLISH_SECONDS` and marks the same row unpublished, so the
same event (id, attempt) is sent. The job then runs once, as attempt 1.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from vtp_localstack.stack import LocalStack

from .journey import Journey, eventually
from .recovery import scenario

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _command_rows(stack: LocalStack, job_id: str) -> list[asyncpg.Record]:
    url = stack.cfg.database_url("jobs").replace("postgresql+asyncpg://", "postgresql://", 1)

    async def read() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(
                await conn.fetch(
                    "SELECT id, event_id, published_at FROM outbox WHERE topic = 'job.requested.v1' AND key = $1",
                    job_id,
                )
            )
        finally:
            await conn.close()

    return asyncio.run(read())


def _mark_published(stack: LocalStack, job_id: str) -> None:
    url = stack.cfg.database_url("jobs").replace("postgresql+asyncpg://", "postgresql://", 1)

    async def write() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE topic = 'job.requested.v1' AND key = $1", job_id
            )
        finally:
            await conn.close()

    asyncio.run(write())


def test_a_lost_command_is_sent_again_and_the_job_runs_once(chaos_stack: LocalStack, journey: Journey) -> None:
    with scenario("lost job.requested") as clock:
        chaos_stack.table.stop("jobs-outbox-relay")
        try:
            job_id = journey.submit()
            uuid.UUID(job_id)
            [row] = _command_rows(chaos_stack, job_id)
            assert row["published_at"] is None, "the relay is stopped: the command waits in the outbox"
            _mark_published(chaos_stack, job_id)  # "sent", then forgotten by the broker
            clock.fault()
        finally:
            chaos_stack.up()  # the relay again
        started = journey.wait_job(job_id, lambda j: j["status"] != "queued", "taken by a runner", timeout=120)
        clock.mark("taken")
        assert started["attempt"] == 1, started
        [again] = _command_rows(chaos_stack, job_id)
        assert (again["id"], again["event_id"]) == (row["id"], row["event_id"]), "the same event, not a new one"
        eventually(lambda: _command_rows(chaos_stack, job_id)[0]["published_at"], "the resent command published")
        job = journey.check_job(job_id)
        assert job["attempt"] == 1, "the job ran once, as the attempt it was submitted as"
        clock.mark("converged")
