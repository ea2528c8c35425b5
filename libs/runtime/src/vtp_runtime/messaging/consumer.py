"""faststream subscribers that hand typed CloudEvents envelopes to handlers.

Offsets are committed only after the handler returns (at-least-once). A handler
that raises gets the record again after a short pause; a record that is not a
valid event of its topic is logged and skipped, so one bad producer cannot
wedge a partition. Handlers make redelivery harmless by claiming the event id
in their unit of work (see :mod:`vtp_runtime.db.inbox`).
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
from vtp_runtime.messaging.tracing import parse_traceparent, set_current_trace

EventHandler = Callable[[EventEnvelope[Any]], Awaitable[None]]
_log = logging.getLogger(__name__)
RETRY_PAUSE_SECONDS = 0.5


def subscribe(broker: KafkaBroker, spec: TopicSpec, group_id: str, handler: EventHandler) -> None:
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
            _log.error("skipping malformed record %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)
            return
        set_current_trace(parse_traceparent(event.traceparent, event.tracestate))
        try:
            await handler(event)
        except Exception:
            _log.exception("handler for %s failed on event %s; it will be redelivered", spec.topic, event.id)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
        finally:
            set_current_trace(None)


BatchHandler = Callable[[list[EventEnvelope[Any]]], Awaitable[None]]


async def _raw_records(message: Any) -> None:
    """Skip faststream's own JSON decoding of every record: the handler decodes the raw records itself."""
    return None


def subscribe_batch(
    broker: KafkaBroker,
    specs: Sequence[TopicSpec],
    group_id: str,
    handler: BatchHandler,
    *,
    max_records: int = 500,
    batch_timeout_ms: int = 50,
    fetch_max_wait_ms: int = 500,
) -> None:
    """Register `handler` for batches of events from several topics in consumer group `group_id`.

    A batch holds whatever one fetch returned (up to `max_records`), in each
    partition's order, so a handler can apply it in one transaction. If the
    handler raises, every partition of the batch is rewound and it comes again.
    A latency-sensitive consumer lowers `fetch_max_wait_ms`: brokers that do not
    answer a fetch as soon as data arrives (the local Tansu) hold it that long.
    """
    by_topic = {spec.topic: spec for spec in specs}

    @broker.subscriber(
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
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple | list) else (raw,)  # a tuple from aiokafka, a list in tests
        events: list[EventEnvelope[Any]] = []
        for record in records:
            try:
                events.append(decode_event(by_topic[record.topic], record.headers, record.value or b""))
            except MalformedEvent as exc:
                where = f"{record.topic}[{record.partition}]@{record.offset}"
                _log.error("skipping malformed record %s: %s", where, exc)
        if not events:
            return
        try:
            await handler(events)
        except Exception:
            _log.exception("batch handler of %s failed on %d events; they will be redelivered", group_id, len(events))
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
