"""Pruning the delivery tables: old published outbox rows and old applied event ids go, the rest stays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.scratch_db import scratch_database
from vtp_localstack.stack import LocalStack
from vtp_runtime.db.delivery_tables import add_delivery_tables
from vtp_runtime.db.engine import make_engine
from vtp_runtime.db.retention import prune_delivery_tables

pytestmark = pytest.mark.integration
metadata = sa.MetaData()
outbox, processed = add_delivery_tables(metadata)


@pytest.fixture()
async def engine(stack: LocalStack) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(await scratch_database(stack.cfg.postgres_admin_url, "retention"))
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


async def test_only_old_published_rows_and_old_event_ids_are_pruned(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=30), now - timedelta(hours=1)
    row = {"topic": "t.v1", "key": "k", "headers": {}, "payload": b"{}"}
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(outbox),
            [
                row | {"event_id": "old-published", "created_at": old, "published_at": old},
                row | {"event_id": "recent-published", "created_at": recent, "published_at": recent},
                row | {"event_id": "old-unpublished", "created_at": old, "published_at": None},
            ],
        )
        await conn.execute(
            sa.insert(processed),
            [
                {"consumer": "a", "event_id": "e1", "processed_at": old},
                {"consumer": "b", "event_id": "e1", "processed_at": recent},  # same id, another consumer
                {"consumer": "a", "event_id": "e2", "processed_at": recent},
            ],
        )

    removed = await prune_delivery_tables(engine, timedelta(days=3), timedelta(days=14))

    async with engine.connect() as conn:
        kept_outbox = set((await conn.execute(sa.select(outbox.c.event_id))).scalars())
        kept_processed = {tuple(r) for r in await conn.execute(sa.select(processed.c.consumer, processed.c.event_id))}
    assert removed == 2
    assert kept_outbox == {"recent-published", "old-unpublished"}  # never drop what is not yet published
    assert kept_processed == {("b", "e1"), ("a", "e2")}
