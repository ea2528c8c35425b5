"""W3C trace context (``traceparent``) creation and propagation.

The current trace rides in a context variable: a consumer adopts the incoming
event's trace, and events it stages carry a child span of it.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """One position in a distributed trace."""

    trace_id: str
    span_id: str
    flags: str = "01"
    tracestate: str | None = None

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags, self.tracestate)


_current: ContextVar[TraceContext | None] = ContextVar("vtp_trace", default=None)


def parse_traceparent(value: str | None, tracestate: str | None = None) -> TraceContext | None:
    """A TraceContext from a header value, or None when absent or malformed."""
    match = _TRACEPARENT.match(value or "")
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return TraceContext(match.group(1), match.group(2), match.group(3), tracestate)


def new_trace() -> TraceContext:
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))


def current_trace() -> TraceContext | None:
    return _current.get()


def set_current_trace(trace: TraceContext | None) -> None:
    _current.set(trace)


def outgoing_trace() -> TraceContext:
    """The trace context to stamp on an event produced now."""
    parent = _current.get()
    return parent.child() if parent else new_trace()
