"""CloudEvents 1.0 in Kafka binary content mode: envelope <-> (key, headers, value)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from vtp_contracts import EventData, EventEnvelope, TopicSpec
from vtp_contracts import envelope as ce
from vtp_runtime.messaging.tracing import outgoing_trace

KafkaHeaders = list[tuple[str, bytes]]


class MalformedEvent(Exception):
    """A Kafka record that is not a valid event of its topic (poison message)."""


@dataclass(frozen=True)
class OutboundEvent:
    """An event ready for Kafka: topic, partition key, headers and JSON value."""

    id: str
    topic: str
    key: str
    headers: dict[str, str]
    value: bytes


def make_event(spec: TopicSpec, data: EventData, source: str, *, event_id: str | None = None) -> OutboundEvent:
    """Wrap a payload in its envelope; the subject and key are the aggregate id."""
    if not isinstance(data, spec.data_model):
        raise TypeError(f"{spec.topic} carries {spec.data_model.__name__}, not {type(data).__name__}")
    trace = outgoing_trace()
    key = spec.key_of(data)
    eid = event_id or str(uuid.uuid4())
    headers = {
        ce.HEADER_ID: eid,
        ce.HEADER_SOURCE: f"/services/{source}",
        ce.HEADER_TYPE: spec.ce_type,
        ce.HEADER_SPECVERSION: ce.SPEC_VERSION,
        ce.HEADER_TIME: datetime.now(UTC).isoformat(),
        ce.HEADER_SUBJECT: key,
        ce.HEADER_CONTENT_TYPE: ce.CONTENT_TYPE,
        ce.HEADER_TRACEPARENT: trace.traceparent,
    }
    if trace.tracestate:
        headers[ce.HEADER_TRACESTATE] = trace.tracestate
    return OutboundEvent(eid, spec.topic, key, headers, data.model_dump_json().encode())


def kafka_headers(headers: dict[str, str]) -> KafkaHeaders:
    return [(name, value.encode()) for name, value in headers.items()]


def _header_map(raw: Sequence[tuple[str, bytes]] | dict[str, Any]) -> dict[str, str]:
    items = raw.items() if isinstance(raw, dict) else raw
    return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in items}


def decode_event(
    spec: TopicSpec, headers: Sequence[tuple[str, bytes]] | dict[str, Any], value: bytes
) -> EventEnvelope[Any]:
    """Parse a Kafka record of `spec`'s topic into a typed envelope."""
    attrs = _header_map(headers)
    missing = [h for h in (ce.HEADER_ID, ce.HEADER_TYPE, ce.HEADER_SOURCE, ce.HEADER_TIME) if not attrs.get(h)]
    if missing:
        raise MalformedEvent(f"missing CloudEvents headers: {missing}")
    if attrs[ce.HEADER_TYPE] != spec.ce_type:
        raise MalformedEvent(f"type {attrs[ce.HEADER_TYPE]!r} on topic {spec.topic}")
    try:
        data = spec.data_model.model_validate(json.loads(value))
        return EventEnvelope[Any](
            id=attrs[ce.HEADER_ID],
            source=attrs[ce.HEADER_SOURCE],
            type=attrs[ce.HEADER_TYPE],
            specversion=attrs.get(ce.HEADER_SPECVERSION, ce.SPEC_VERSION),
            time=datetime.fromisoformat(attrs[ce.HEADER_TIME]),
            subject=attrs.get(ce.HEADER_SUBJECT) or spec.key_of(data),
            traceparent=attrs.get(ce.HEADER_TRACEPARENT),
            tracestate=attrs.get(ce.HEADER_TRACESTATE),
            data=data,
        )
    except (ValueError, ValidationError) as exc:
        raise MalformedEvent(f"invalid {spec.topic} event: {exc}") from exc
