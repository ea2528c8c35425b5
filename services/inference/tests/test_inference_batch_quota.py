"""Batch images given back to the quotas without the stack: what a batch owes when it ends, which
windows get it, once, and what a chunk meters (the Lua step itself: test_inference_rate_limiter)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from vtp_inference.domain.batches import Batch, BatchStatus, unprocessed
from vtp_inference.domain.keys import Limits
from vtp_inference.domain.limits import policies, still_current
from vtp_inference.service_layer import batch_quota
from vtp_inference.service_layer.batch_metrics import Chunk, meter_chunk

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
DEPLOYMENT = uuid.uuid4()


def _windows(at: datetime) -> list[str]:
    found = policies("deployment", DEPLOYMENT, Limits(per_second=5, images_per_day=50, images_per_month=500), at, 300)
    return [p.store_key for p in found if p.kind == "quota"]


def _batch(status: BatchStatus, processed: int, windows: list[str] | None = None) -> Batch:
    return Batch(
        id=uuid.uuid4(), project_id=uuid.uuid4(), deployment_id=DEPLOYMENT, key_id=None, status=status,
        task_type="detect", source={"kind": "zip", "files": []}, params={}, total_images=20, chunk_size=4,
        created_at=NOW, processed_images=processed,
        quota_windows=_windows(datetime.now(UTC)) if windows is None else windows,  # given back now: current
    )  # fmt: skip


def test_a_batch_that_ends_unfinished_owes_the_images_it_never_processed() -> None:
    assert unprocessed(_batch(BatchStatus.CANCELLED, 8)) == 12
    assert unprocessed(_batch(BatchStatus.FAILED, 0)) == 20
    assert unprocessed(_batch(BatchStatus.SUCCEEDED, 20)) == 0
    assert unprocessed(_batch(BatchStatus.CANCELLED, 8, windows=[])) == 0  # nothing was taken (no quota, fail-open)


def test_only_the_current_day_and_month_are_still_current() -> None:
    day, month = _windows(NOW)
    assert still_current(day, NOW) and still_current(month, NOW)
    assert not still_current(day, NOW + timedelta(days=1)) and still_current(month, NOW + timedelta(days=1))
    assert not still_current(month, NOW + timedelta(days=31))
    assert not still_current(f"vtp:inference:rl:deployment:{DEPLOYMENT}:s", NOW)  # a bucket is no window


class Returns:
    """Records what is given back; a batch gives back once, as the Lua step's marker makes it."""

    def __init__(self, down: bool = False) -> None:
        self.calls: list[tuple[uuid.UUID, list[str], int]] = []
        self.down = down

    async def give_back(self, batch_id: uuid.UUID, windows: Sequence[str], images: int) -> bool:
        if self.down:
            raise RedisConnectionError("redis away")
        first = all(b != batch_id for b, _, _ in self.calls)
        self.calls.append((batch_id, list(windows), images))
        return first


class Repo:
    """The repository's part give_back uses, over a dict of rows."""

    rows: dict[uuid.UUID, Batch] = {}

    def __init__(self, session: Any) -> None:
        pass

    async def owing(self, ids: list[uuid.UUID] | None = None, limit: int = 50) -> list[Batch]:
        found = [b for b in self.rows.values() if b.quota_owed > 0 and (ids is None or b.id in ids)]
        return found[:limit]

    async def returned(self, batch_id: uuid.UUID, images: int) -> None:
        self.rows[batch_id] = replace(self.rows[batch_id], quota_owed=0, quota_returned=images)


class Uow:
    session = None

    async def __aenter__(self) -> Uow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        return None


@pytest.fixture()
def rows(monkeypatch: pytest.MonkeyPatch) -> dict[uuid.UUID, Batch]:
    monkeypatch.setattr(batch_quota, "BatchRepository", Repo)
    Repo.rows = {}
    return Repo.rows


def _owing(rows: dict[uuid.UUID, Batch], batch: Batch) -> Batch:
    owed = replace(batch, quota_owed=unprocessed(batch))
    rows[owed.id] = owed
    return owed


def test_the_images_go_back_once_and_only_to_windows_still_current(rows: dict[uuid.UUID, Batch]) -> None:
    returns, new_uow = Returns(), cast(Any, Uow)
    cancelled = _owing(rows, _batch(BatchStatus.CANCELLED, 8))
    day, month = cancelled.quota_windows
    yesterday = _owing(rows, _batch(BatchStatus.FAILED, 4, windows=[w.replace(day[-10:], "2026-12-01") for w in [day]]))

    async def run() -> None:
        assert await batch_quota.settle(new_uow, returns, cancelled.id) == 12
        assert returns.calls == [(cancelled.id, [day, month], 12)]
        assert await batch_quota.settle(new_uow, returns, cancelled.id) is None  # settled: nothing owed any more
        assert await batch_quota.sweep(new_uow, returns) == 1  # yesterday's window ended: nothing to give back
        assert len(returns.calls) == 1 and rows[yesterday.id].quota_owed == 0
        assert rows[yesterday.id].quota_returned == 0 and rows[cancelled.id].quota_returned == 12

    asyncio.run(run())


def test_a_retry_after_a_crash_records_the_return_without_giving_twice(rows: dict[uuid.UUID, Batch]) -> None:
    returns, new_uow = Returns(), cast(Any, Uow)
    failed = _owing(rows, _batch(BatchStatus.FAILED, 0))

    async def run() -> None:
        await returns.give_back(failed.id, failed.quota_windows, 20)  # given back, then the replica died
        assert await batch_quota.sweep(new_uow, returns) == 1  # the marker: Redis gives nothing twice
        assert rows[failed.id].quota_owed == 0 and rows[failed.id].quota_returned == 20

    asyncio.run(run())


def test_redis_away_leaves_the_images_owed_for_the_watchdog(rows: dict[uuid.UUID, Batch]) -> None:
    owed = _owing(rows, _batch(BatchStatus.CANCELLED, 4))

    async def run() -> None:
        assert await batch_quota.settle(cast(Any, Uow), Returns(down=True), owed.id) is None
        assert await batch_quota.sweep(cast(Any, Uow), Returns(down=True)) == 0
        assert rows[owed.id].quota_owed == 16
        assert await batch_quota.settle(cast(Any, Uow), None, owed.id) is None  # no Redis configured: nothing

    asyncio.run(run())


class Meter:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(self, *ids: Any, **values: Any) -> None:
        self.records.append(values)


def test_a_recorded_chunk_meters_its_predicted_images_and_each_refused_one_as_an_error() -> None:
    meter = Meter()
    rows = [
        {"index": 0, "timings_ms": {"inference": 30.0}},
        {"index": 1, "timings_ms": {"inference": 10.0}},
        {"index": 2, "error": {"code": "image_undecodable", "message": "x"}},
    ]
    meter_chunk(cast(Any, meter), _batch(BatchStatus.RUNNING, 0), Chunk(rows, 300, 0.5))
    assert meter.records[0] == {"images": 2, "latency_ms": 500.0, "compute_seconds": 0.04, "bytes_in": 300}
    assert meter.records[1] == {"images": 0, "latency_ms": 0, "error": "image_undecodable"}
