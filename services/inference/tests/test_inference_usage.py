"""Usage metering: histogram percentiles, exact merging across replicas, rollups, idempotent flushes
(with a hand-written store), and the query's validation."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vtp_inference.domain.model import RequestRefused
from vtp_inference.domain.usage import (
    RATIO,
    Aggregator,
    Batch,
    Cell,
    CellKey,
    Granularity,
    bucket_of,
    percentile_ms,
    upper_bound_ms,
)
from vtp_inference.domain.usage_query import parse_query
from vtp_inference.service_layer.metering import Meter

PROJECT, DEPLOYMENT, KEY = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
T0 = datetime(2026, 3, 1, 10, 17, tzinfo=UTC)


class FakeStore:
    """Applies each (replica, seq) once, like the PostgreSQL store; can fail before or after committing."""

    def __init__(self) -> None:
        self.applied: set[tuple[uuid.UUID, int]] = set()
        self.cells: dict[tuple[Granularity, CellKey], Cell] = {}
        self.fail_before = 0  # the next n applies raise without writing
        self.fail_after = 0  # the next n applies write, then raise (a lost acknowledgement)

    async def apply(self, batch: Batch) -> bool:
        if self.fail_before:
            self.fail_before -= 1
            raise ConnectionError("database down")
        if (batch.replica_id, batch.seq) in self.applied:
            return False
        self.applied.add((batch.replica_id, batch.seq))
        for granularity in Granularity:
            for key, cell in batch.rollup(granularity).items():
                self.cells.setdefault((granularity, key), Cell()).merge(cell)
        if self.fail_after:
            self.fail_after -= 1
            raise TimeoutError("commit acknowledgement lost")
        return True

    async def read(self, *args: object, **kwargs: object) -> list[tuple[CellKey, Cell]]:
        raise NotImplementedError

    async def prune(self, *args: object) -> None:
        raise NotImplementedError

    def total(self, granularity: Granularity) -> Cell:
        out = Cell()
        for (g, _), cell in self.cells.items():
            if g is granularity:
                out.merge(cell)
        return out


def key(minute: int = 0, key_id: uuid.UUID | None = KEY) -> CellKey:
    return CellKey(T0 + timedelta(minutes=minute), PROJECT, DEPLOYMENT, key_id)


def test_buckets_are_log_spaced_and_percentiles_never_underestimate():
    assert bucket_of(0.01) == 0 and bucket_of(10_000_000) == bucket_of(1e12)  # under- and overflow
    latencies = [random.Random(3).uniform(1, 1000) for _ in range(10_000)]
    cell = Cell()
    for ms in latencies:
        cell.add(1, ms, 0.0, 0, None)
    ordered = sorted(latencies)
    for q in (0.5, 0.95, 0.99):
        truth = ordered[int(q * len(ordered)) - 1]
        got = percentile_ms(cell.latency, q)
        assert got is not None and truth <= got <= truth * RATIO * 1.001, (q, truth, got)
    assert percentile_ms({}, 0.5) is None
    for ms in (0.1, 0.5, 3.7, 42.0, 999.0):
        assert ms <= upper_bound_ms(bucket_of(ms)) <= ms * RATIO * 1.001


def test_cells_from_several_replicas_merge_exactly():
    rng = random.Random(7)
    single, replicas = Aggregator(), [Aggregator() for _ in range(3)]
    for _ in range(3000):
        args = {
            "images": rng.randint(1, 4),
            "latency_ms": rng.lognormvariate(3, 1),
            "compute_seconds": rng.random() / 100,
            "bytes_in": rng.randint(100, 10_000),
            "error": rng.choice([None, None, None, "image_undecodable", "rate_limited"]),
        }
        where = key(rng.randint(0, 5), rng.choice([KEY, None]))
        single.record(where, **args)
        rng.choice(replicas).record(where, **args)
    merged = Aggregator()
    for replica in replicas:
        merged.merge(replica.drain())
    expected, got = single.drain(), merged.drain()
    assert expected.keys() == got.keys()
    for where, cell in expected.items():
        other = got[where]
        assert (cell.requests, cell.images, cell.errors, cell.latency, cell.bytes_in) == (
            other.requests, other.images, other.errors, other.latency, other.bytes_in,
        )  # fmt: skip
        assert cell.compute_seconds == pytest.approx(other.compute_seconds)
        assert cell.summary()["latency_ms"] == other.summary()["latency_ms"]


def test_minutes_roll_up_into_their_hour_and_day():
    aggregator = Aggregator()
    for minute in (0, 1, 50, 60 * 5):  # 10:17, 10:18, 11:07, 15:17
        aggregator.record(key(minute), images=2, latency_ms=10.0, bytes_in=5, error="rate_limited" if minute else None)
    batch = Batch(uuid.uuid4(), 1, aggregator.drain())
    hours = batch.rollup(Granularity.HOUR)
    starts = sorted(k.start.hour for k in hours)
    assert starts == [10, 11, 15]
    ten = hours[CellKey(T0.replace(minute=0), PROJECT, DEPLOYMENT, KEY)]
    assert (ten.requests, ten.images, ten.errors, ten.bytes_in) == (2, 4, {"rate_limited": 1}, 10)
    (day,) = batch.rollup(Granularity.DAY).values()
    assert (day.requests, day.images, day.errors, sum(day.latency.values())) == (4, 8, {"rate_limited": 3}, 4)


async def test_a_flush_writes_each_batch_once_even_when_the_commit_acknowledgement_is_lost():
    store = FakeStore()
    meter = Meter(store, clock=lambda: T0)
    for _ in range(5):
        meter.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)
    store.fail_after = 1  # written, but the replica does not know
    with pytest.raises(TimeoutError):
        await meter.flush()
    assert meter.unflushed() == 1  # kept, with the same number
    meter.record(PROJECT, DEPLOYMENT, None, images=2, latency_ms=3.0)  # meanwhile: a newer batch
    assert await meter.flush() == 2  # the pending batch (a no-op now), then the newer one
    assert store.total(Granularity.MINUTE).requests == 6 and store.total(Granularity.DAY).images == 7
    assert sorted(seq for _, seq in store.applied) == [1, 2]


async def test_a_failed_flush_is_retried_and_nothing_is_lost_or_doubled():
    store = FakeStore()
    meter = Meter(store, clock=lambda: T0)
    meter.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0, error="image_undecodable")
    store.fail_before = 2
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await meter.flush()
        meter.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)
    await meter.flush()
    await meter.flush()  # nothing left: writes nothing
    total = store.total(Granularity.HOUR)
    assert (total.requests, total.images, total.errors) == (3, 3, {"image_undecodable": 1})
    assert meter.unflushed() == 0


async def test_a_restarted_replica_numbers_its_batches_anew_and_counts_only_its_own_requests():
    store = FakeStore()
    first = Meter(store, clock=lambda: T0)
    first.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)
    await first.flush()
    first.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)  # lost: killed before its flush
    second = Meter(store, clock=lambda: T0)
    assert second.replica_id != first.replica_id
    second.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)
    await second.final_flush()
    assert store.total(Granularity.MINUTE).requests == 2


async def test_each_request_counts_in_the_minute_it_was_answered():
    store, moments = FakeStore(), iter([T0, T0 + timedelta(seconds=59), T0 + timedelta(seconds=61), T0])
    meter = Meter(store, clock=lambda: next(moments))
    for _ in range(4):
        meter.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)
    await meter.flush()
    minutes = {k.start: c.requests for (g, k), c in store.cells.items() if g is Granularity.MINUTE}
    assert minutes == {T0: 3, T0 + timedelta(minutes=1): 1}


async def test_final_flush_logs_instead_of_raising_and_a_disabled_meter_records_nothing():
    store = FakeStore()
    meter = Meter(store, clock=lambda: T0)
    meter.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)
    store.fail_before = 1
    await meter.final_flush()
    assert meter.unflushed() == 1
    off = Meter(store, enabled=False)
    off.record(PROJECT, DEPLOYMENT, KEY, images=1, latency_ms=3.0)
    assert off.unflushed() == 0


def test_a_query_reports_every_problem_at_once():
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(RequestRefused) as refused:
        parse_query("2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z", "week", "not-a-key", now)
    assert {(p.pointer, p.code) for p in refused.value.problems} == {
        ("/granularity", "invalid_parameter"),
        ("/key_id", "invalid_parameter"),
        ("/from", "invalid_range"),
    }
    with pytest.raises(RequestRefused) as refused:
        parse_query("2026-01-01", "2026-03-01", "minute", None, now)
    assert [(p.pointer, p.code) for p in refused.value.problems] == [("/to", "range_too_long")]
    with pytest.raises(RequestRefused) as refused:
        parse_query("yesterday", "9999-12-31T23:59:59-01:00", None, None, now)
    assert [(p.pointer, p.code) for p in refused.value.problems] == [
        ("/to", "invalid_parameter"),
        ("/from", "invalid_parameter"),
    ]


def test_a_query_starts_on_a_period_boundary_and_has_defaults():
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    query = parse_query("2026-03-01T10:17:45", "2026-03-01T12:00:00+01:00", "hour", str(KEY), now)
    assert query.start == datetime(2026, 3, 1, 10, tzinfo=UTC) and query.end == datetime(2026, 3, 1, 11, tzinfo=UTC)
    assert query.granularity is Granularity.HOUR and query.key_id == KEY
    default = parse_query(None, None, None, None, now)
    assert default.granularity is Granularity.HOUR and default.end == now
    assert default.start == datetime(2026, 2, 28, 12, tzinfo=UTC)
