"""A batch keeps the trace it was submitted in: every attempt's `batch.requested.v1`, the one the
lease watchdog stages outside any request included, and a lost batch's `batch.completed.v1` carry
it. With fakes: an in-memory repository behind the real lifecycle transactions, and a unit of work
whose `publish` stamps the event's headers as the outbox does (`make_event`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import pytest

from vtp_contracts.catalog import BATCH_COMPLETED, BATCH_REQUESTED
from vtp_inference.domain.batches import Batch, BatchStatus
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.tracing import CURRENT, TraceContext, adopted, parse

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REQUEST = TraceContext(TRACE, "00f067aa0ba902b7", "01", "vtp=1")  # the API request that submits the batch


class FakeRepo:
    rows: dict[uuid.UUID, Batch] = {}  # the table, shared by every unit of work

    def __init__(self, session: object) -> None: ...

    async def add(self, batch: Batch) -> None:
        self.rows[batch.id] = batch

    async def save(self, batch: Batch) -> None:
        self.rows[batch.id] = batch

    async def expired(self, now: datetime) -> list[Batch]:
        return [b for b in self.rows.values() if b.status == BatchStatus.RUNNING and (b.lease_until or now) < now]


class FakeUow:
    published: list[OutboundEvent] = []

    session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...

    async def publish(self, spec: Any, data: Any) -> str:
        self.published.append(make_event(spec, data, "inference"))  # its traceparent: a child of the current
        return "id"


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "BatchRepository", FakeRepo)
    FakeRepo.rows, FakeUow.published = {}, []


def _batch() -> Batch:
    return Batch(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), None, BatchStatus.QUEUED, "detect",
        {"kind": "zip", "files": ["a.jpg"]}, {}, 1, 1, datetime.now(UTC),
    )  # fmt: skip


def _lose(batch: Batch) -> None:
    """Its worker died: running, with a lease in the past."""
    batch.status, batch.owner, batch.lease_until = BatchStatus.RUNNING, "r1", datetime.now(UTC) - timedelta(seconds=1)


def _trace_of(event: OutboundEvent) -> tuple[str, str]:
    parent = parse(event.headers["traceparent"], event.headers.get("tracestate"))
    assert parent is not None
    return parent.trace_id, parent.span_id


async def test_a_resumed_attempts_command_goes_on_in_the_submitting_requests_trace() -> None:
    with adopted(REQUEST):
        batch = await lifecycle.submit(FakeUow, _batch())
    assert (batch.traceparent, batch.tracestate) == (REQUEST.traceparent, "vtp=1")  # stored with the batch
    _lose(batch)
    assert await lifecycle.requeue_expired(FakeUow, max_attempts=3) == 1  # the watchdog: no request around
    first, resumed = FakeUow.published
    assert [json.loads(e.value)["attempt"] for e in (first, resumed)] == [1, 2]
    assert _trace_of(first)[0] == _trace_of(resumed)[0] == TRACE
    assert len({_trace_of(first)[1], _trace_of(resumed)[1], REQUEST.span_id}) == 3  # each a span of its own
    assert resumed.headers["tracestate"] == "vtp=1"
    assert CURRENT.get() is None

    _lose(batch)  # the last attempt lost too: the batch fails, announced in the same trace
    await lifecycle.requeue_expired(FakeUow, max_attempts=2)
    completed = FakeUow.published[-1]
    assert completed.topic == BATCH_COMPLETED.topic and _trace_of(completed)[0] == TRACE


async def test_a_batch_submitted_outside_a_request_keeps_a_trace_of_its_own() -> None:
    batch = await lifecycle.submit(FakeUow, _batch())
    stored = parse(batch.traceparent)
    assert stored is not None and stored.trace_id != TRACE
    _lose(batch)
    await lifecycle.requeue_expired(FakeUow, max_attempts=3)
    assert [_trace_of(e)[0] for e in FakeUow.published] == [stored.trace_id] * 2
    assert {e.topic for e in FakeUow.published} == {BATCH_REQUESTED.topic}


async def test_a_batch_stored_before_traces_were_kept_resumes_in_a_new_trace() -> None:
    batch = _batch()
    _lose(batch)
    FakeRepo.rows[batch.id] = batch  # no traceparent column value: an older row
    await lifecycle.requeue_expired(FakeUow, max_attempts=3)
    [resumed] = FakeUow.published
    assert json.loads(resumed.value)["attempt"] == 2 and _trace_of(resumed)[0] != TRACE
