"""The PostgreSQL usage store on a scratch database: batches from several replicas, written at the same
time and some of them twice, add up exactly to the same requests aggregated in one place, at every
granularity; pruning drops only old minutes."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.scratch_db import scratch_database
from vtp_inference.adapters.usage_store import PostgresUsageStore
from vtp_inference.bootstrap import MIGRATIONS
from vtp_inference.domain.usage import Aggregator, Batch, CellKey, Granularity
from vtp_localstack.stack import LocalStack
from vtp_runtime.db.engine import make_engine, make_session_factory
from vtp_runtime.db.migrations import upgrade_to_head

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 23, 17, tzinfo=UTC)  # the cells straddle midnight: two days, several hours


async def test_concurrent_and_repeated_batches_add_up_exactly(stack: LocalStack) -> None:
    url = await scratch_database(stack.cfg.postgres_admin_url, "usage_store")
    await upgrade_to_head(url, MIGRATIONS)
    engine = make_engine(url)
    store = PostgresUsageStore(make_session_factory(engine))
    project, deployment, key = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rng, everything, batches = random.Random(5), Aggregator(), []
    try:
        for _ in range(4):  # replicas
            replica = uuid.uuid4()
            for seq in range(1, 6):
                cells = Aggregator()
                for _ in range(150):
                    where = CellKey(
                        T0 + timedelta(minutes=rng.randint(0, 90)), project, deployment, rng.choice([None, key])
                    )
                    counts = {
                        "images": rng.randint(0, 3),
                        "latency_ms": rng.lognormvariate(3, 1),
                        "compute_seconds": 0.25,
                        "bytes_in": rng.randint(1, 5000),
                        "error": rng.choice([None, None, "image_undecodable", "rate_limited"]),
                    }
                    cells.record(where, **counts)
                    everything.record(where, **counts)
                batches.append(Batch(replica, seq, cells.drain()))
        applied = await asyncio.gather(*(store.apply(b) for b in batches))  # all at once: no deadlock
        again = await asyncio.gather(*(store.apply(b) for b in batches[::3]))  # retries: no-ops
        assert all(applied) and not any(again)

        expected = Batch(uuid.uuid4(), 0, everything.drain())
        for granularity in Granularity:
            rows = dict(await store.read(project, granularity, T0 - timedelta(days=2), T0 + timedelta(days=2)))
            want = expected.rollup(granularity)
            assert rows.keys() == want.keys(), granularity
            for where, cell in want.items():
                got = rows[where]
                assert (got.requests, got.images, got.errors, got.latency, got.bytes_in) == (
                    cell.requests, cell.images, cell.errors, cell.latency, cell.bytes_in,
                ), (granularity, where)  # fmt: skip
                assert got.compute_seconds == pytest.approx(cell.compute_seconds)
        one_key = await store.read(project, Granularity.DAY, T0 - timedelta(days=2), T0 + timedelta(days=2), key_id=key)
        assert {where.key_id for where, _ in one_key} == {key}
        assert await store.read(uuid.uuid4(), Granularity.DAY, T0 - timedelta(days=2), T0 + timedelta(days=2)) == []

        await store.prune(timedelta(days=1), timedelta(days=1))  # T0 is long past: its minutes go
        window = (T0 - timedelta(days=2), T0 + timedelta(days=2))
        assert await store.read(project, Granularity.MINUTE, *window) == []
        assert len(await store.read(project, Granularity.DAY, *window)) == len(expected.rollup(Granularity.DAY))
    finally:
        await engine.dispose()
