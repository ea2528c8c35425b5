"""faststream subscribers that hand typed CloudEvents envelopes to handlers.

Offsets are committed only after the handler returns (at-least-once); handlers make
redelivery harmless by claiming the event id in their unit of work (see
:mod:`vtp_runtime.db.inbox`). A failing event is redelivered after a short pause. While
the failure is an outage (:func:`~vtp_runtime.transient.is_transient`) that goes on as
long as it takes; an event that fails for any other reason `max_tries` times, or that is
not a valid event of its topic at all, goes to ``<topic>.dlq``
(:mod:`~vtp_runtime.messaging.dead_letter`), so one poison event cannot wedge a partition
and is never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from vtp_contracts import EventEnvelope, TopicSpec
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_runtime.messaging.dead_letter import DeadLetters, Record
from vtp_runtime.messaging.tracing import parse_traceparent, set_current_trace
from vtp_runtime.transient import is_transient

EventHandler = Callable[[EventEnvelope[Any]], Awaitable[None]]
BatchHandler = Callable[[list[EventEnvelope[Any]]], Awaitable[None]]
_log = logging.getLogger(__name__)
RETRY_PAUSE_SECONDS = 0.5


async def _after_failure(dead_letters: DeadLetters, record: Record, group: str, exc: Exception) -> None:
    """Dead-letter `record` once it has failed often enough; otherwise pause and raise (redelivery)."""
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    if is_transient(exc):
        _log.warning("%s: handler of %s cannot reach a dependency (%s); redelivering", group, where, exc)
    else:
        tries = dead_letters.failed_try(record, group)
        if tries >= dead_letters.max_tries:
            await dead_letters.send(record, group, f"{type(exc).__name__}: {exc}", tries)
            return
        _log.exception("%s: handler failed on %s (try %d of %d)", group, where, tries, dead_letters.max_tries)
    await asyncio.sleep(RETRY_PAUSE_SECONDS)
    raise exc


def subscribe(
    broker: KafkaBroker, spec: TopicSpec, group_id: str, handler: EventHandler, dead_letters: DeadLetters
) -> None:
    """Register `handler` for every event of `spec`'s topic in consumer group `group_id`."""

    @broker.subscriber(
        spec.topic,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{group_id}:{spec.topic}",
        description=spec.description,
    )
    async def consume(message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)  # batch subscribers are not used
        try:
            event = decode_event(spec, record.headers, record.value or b"")
        except MalformedEvent as exc:
            await dead_letters.send(record, group_id, f"malformed: {exc}", 1)
            return
        set_current_trace(parse_traceparent(event.traceparent, event.tracestate))
        try:
            await handler(event)
        except Exception as exc:
            await _after_failure(dead_letters, record, group_id, exc)
        else:
            dead_letters.succeeded(record, group_id)
        finally:
            set_current_trace(None)


async def _raw_records(message: Any) -> None:
    """Skip faststream's own JSON decoding of every record: the handler decodes the raw records itself."""
    return None


def subscribe_batch(
    broker: KafkaBroker,
    specs: Sequence[TopicSpec],
    group_id: str,
    handler: BatchHandler,
    dead_letters: DeadLetters,
    *,
    max_records: int = 500,
    batch_timeout_ms: int = 50,
    fetch_max_wait_ms: int = 500,
) -> Any:
    """Register `handler` for batches of events from several topics in consumer group `group_id`.

    A batch holds whatever one fetch returned (up to `max_records`), in each
    partition's order, so a handler can apply it in one transaction. If the handler
    fails on an outage, every partition of the batch is rewound and it comes again.
    If it fails otherwise, the batch's events are applied one at a time, in order, to
    find the poison one: events before it are applied, it counts a try (and is
    dead-lettered after `max_tries`), and the batch is redelivered from its start
    (applied events are duplicates then, which handlers skip).
    A latency-sensitive consumer lowers `fetch_max_wait_ms`: brokers that do not
    answer a fetch as soon as data arrives (the local Tansu) hold it that long.
    Returns the faststream subscriber (see :mod:`vtp_runtime.messaging.poll_pace`).
    """
    by_topic = {spec.topic: spec for spec in specs}

    subscriber = broker.subscriber(
        *by_topic,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        fetch_max_wait_ms=fetch_max_wait_ms,
        decoder=_raw_records,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{group_id}:batch",
        description="; ".join(f"{s.topic}: {s.description}" for s in specs),
    )

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple | list) else (raw,)  # a tuple from aiokafka, a list in tests
        batch: list[tuple[Record, EventEnvelope[Any]]] = []
        for record in records:
            try:
                batch.append((record, decode_event(by_topic[record.topic], record.headers, record.value or b"")))
            except MalformedEvent as exc:
                await dead_letters.send(record, group_id, f"malformed: {exc}", 1)
        if batch:
            await apply_batch(handler, batch, group_id, dead_letters)

    return subscriber


async def apply_batch(
    handler: BatchHandler, batch: list[tuple[Record, EventEnvelope[Any]]], group: str, dead_letters: DeadLetters
) -> None:
    """Apply a batch in one call; on a failure that is not an outage, one event at a time."""
    try:
        await handler([event for _, event in batch])
        return
    except Exception as exc:
        if is_transient(exc):
            _log.warning("%s: batch of %d events hit an outage (%s); redelivering", group, len(batch), exc)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
        _log.exception("%s: batch of %d events failed; applying them one at a time", group, len(batch))
    for record, event in batch:
        try:
            await handler([event])
        except Exception as exc:
            await _after_failure(dead_letters, record, group, exc)
        else:
            dead_letters.succeeded(record, group)
