"""W3C trace context of events: a consumer adopts the incoming event's trace, and events it
stages carry a child span of it (the same contextvar an HTTP request sets, :mod:`vtp_runtime.tracing`).
"""

from __future__ import annotations

from vtp_runtime.tracing import CURRENT, TraceContext, new_trace
from vtp_runtime.tracing import parse as parse_traceparent

__all__ = ["TraceContext", "current_trace", "new_trace", "outgoing_trace", "parse_traceparent", "set_current_trace"]


def current_trace() -> TraceContext | None:
    return CURRENT.get()


def set_current_trace(trace: TraceContext | None) -> None:
    CURRENT.set(trace)


def outgoing_trace() -> TraceContext:
    """The trace context to stamp on an event produced now."""
    parent = CURRENT.get()
    return parent.child() if parent else new_trace()
