"""Poison events: counted tries, dead letters after max_tries, never for an outage; batches isolate the poison."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy.exc as sa_errors
from fake_kafka import FakeRecord, RecordingSender

from vtp_contracts import EventEnvelope
from vtp_contracts.catalog import EPOCH_PROGRESS
from vtp_contracts.events.jobs import EpochProgress
from vtp_runtime.messaging import consumer
from vtp_runtime.messaging.cloudevents import decode_event, make_event
from vtp_runtime.messaging.consumer import apply_batch
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.metrics import Metrics
from vtp_runtime.transient import is_transient


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer, "RETRY_PAUSE_SECONDS", 0.0)


def batch_of(n: int) -> list[tuple[FakeRecord, EventEnvelope[Any]]]:
    out = []
    for i in range(n):
        data = EpochProgress(job_id=uuid.uuid4(), project_id=uuid.uuid4(), attempt=1, epoch=i + 1, total_epochs=9)
        record = FakeRecord.of(make_event(EPOCH_PROGRESS, data, "trainer-runner"), offset=10 + i)
        out.append((record, decode_event(EPOCH_PROGRESS, record.headers, record.value or b"")))
    return out


class Handler:
    """Applies events (by id) unless one of them is the poison, or the database is 'down'."""

    def __init__(self, poison: set[str] | None = None, outage: bool = False) -> None:
        self.applied: list[str] = []
        self.poison, self.outage = poison or set(), outage

    async def __call__(self, events: list[EventEnvelope[Any]]) -> None:
        if self.outage:
            raise sa_errors.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
        if any(e.id in self.poison for e in events):
            raise ValueError("cannot apply")
        self.applied += [e.id for e in events if e.id not in self.applied]


async def deliver_until_done(handler: Handler, batch: list[Any], dlq: DeadLetters, most: int = 20) -> int:
    """What the broker does: redeliver the batch while the consumer raises; returns the deliveries."""
    for delivery in range(1, most + 1):
        try:
            await apply_batch(handler, batch, "jobs", dlq)
            return delivery
        except Exception:
            continue
    return most


async def test_a_poison_event_in_a_batch_is_dead_lettered_after_max_tries_and_the_rest_applied() -> None:
    sender, metrics = RecordingSender(), Metrics()
    dlq = DeadLetters(sender, max_tries=3, metrics=metrics)
    batch = batch_of(4)
    poison_record, poison = batch[1]
    handler = Handler(poison={poison.id})
    deliveries = await deliver_until_done(handler, batch, dlq)
    assert deliveries == 3  # tried 3 times, then moved aside
    assert handler.applied == [e.id for r, e in batch if e is not poison]  # in order, each once
    [dead] = sender.sent
    assert dead.topic == "epoch.progress.v1.dlq" and dead.value == poison_record.value and dead.key == poison_record.key
    assert dead.headers["ce_id"] == poison.id and dead.headers["ce_type"] == "ai.vtp.epoch.progress.v1"
    assert dead.headers["dlq-reason"] == "ValueError: cannot apply"
    assert dead.headers["dlq-consumer-group"] == "jobs" and dead.headers["dlq-attempts"] == "3"
    assert (dead.headers["dlq-original-topic"], dead.headers["dlq-original-partition"]) == ("epoch.progress.v1", "0")
    assert dead.headers["dlq-original-offset"] == "11"
    assert metrics.value("vtp_dead_letters_total", topic="epoch.progress.v1", group="jobs") == 1


async def test_an_outage_is_retried_forever_and_never_dead_letters_anything() -> None:
    sender = RecordingSender()
    dlq = DeadLetters(sender, max_tries=2, metrics=Metrics())
    handler = Handler(outage=True)
    batch = batch_of(3)
    assert await deliver_until_done(handler, batch, dlq, most=10) == 10  # still failing, still not dead-lettered
    assert sender.sent == []
    handler.outage = False  # the database is back
    assert await deliver_until_done(handler, batch, dlq) == 1
    assert len(handler.applied) == 3 and sender.sent == []


async def test_a_dead_letter_that_kafka_refuses_is_not_lost() -> None:
    sender = RecordingSender()
    dlq = DeadLetters(sender, max_tries=1, metrics=Metrics())
    batch = batch_of(1)
    handler = Handler(poison={batch[0][1].id})
    sender.fail = ConnectionError("broker away")
    with pytest.raises(ConnectionError):  # the batch is redelivered, the offset not committed
        await apply_batch(handler, batch, "jobs", dlq)
    sender.fail = None
    await apply_batch(handler, batch, "jobs", dlq)
    assert len(sender.sent) == 1


def test_transient_failures_are_told_apart_from_poison() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(sa_errors.OperationalError("x", {}, Exception("server closed the connection")))
    wrapped = sa_errors.DBAPIError("x", {}, Exception("boom"))
    wrapped.orig = type("PgError", (Exception,), {"sqlstate": "57P01"})()  # admin shutdown
    assert is_transient(wrapped)
    assert not is_transient(ValueError("bad payload"))
    assert not is_transient(sa_errors.IntegrityError("x", {}, Exception("duplicate key")))
    data_error = sa_errors.DBAPIError("x", {}, Exception("bad"))
    data_error.orig = type("PgError", (Exception,), {"sqlstate": "22021"})()  # invalid byte sequence
    assert not is_transient(data_error)
