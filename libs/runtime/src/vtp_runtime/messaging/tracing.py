"""W3C trace context of events: a consumer adopts the incoming event's trace, and events it
stages carry a child span of it (the same contextvar an HTTP request sets, :mod:`vtp_runtime.tracing`).
"""

from __future__ import annotations

from collections.abc import Sequence

from vtp_runtime.tracing import CURRENT, HEADER, STATE_HEADER, TraceContext, new_trace
from vtp_runtime.tracing import parse as parse_traceparent

__all__ = [
    "TraceContext",
    "current_trace",
    "new_trace",
    "outgoing_trace",
    "parse_traceparent",
    "record_trace",
    "set_current_trace",
]


def current_trace() -> TraceContext | None:
    return CURRENT.get()


def set_current_trace(trace: TraceContext | None) -> None:
    CURRENT.set(trace)


def outgoing_trace() -> TraceContext:
    """The trace context to stamp on an event produced now."""
    parent = CURRENT.get()
    return parent.child() if parent else new_trace()


def record_trace(headers: Sequence[tuple[str, bytes | None]] | None) -> TraceContext | None:
    """The trace a Kafka record's ``traceparent`` (and ``tracestate``) headers carry; None without a valid one."""
    found = {name: value.decode(errors="replace") for name, value in headers or () if value is not None}
    return parse_traceparent(found.get(HEADER), found.get(STATE_HEADER))
