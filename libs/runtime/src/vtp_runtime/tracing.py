"""W3C Trace Context (``traceparent``): one current trace per request or consumed event.

HTTP requests (:mod:`vtp_runtime.http.trace_middleware`) and consumed events
(:mod:`vtp_runtime.messaging.tracing`) set the contextvar; events staged meanwhile carry a child
span of it, and log lines its trace id (see :mod:`vtp_runtime.logging`). Work handed to threads
sees it with ``asyncio.to_thread`` (which copies the context) or ``contextvars.copy_context().run``
in an executor, such as an inference runtime call. Spans are recorded only when exporting (see
:mod:`vtp_runtime.telemetry`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

HEADER = "traceparent"
STATE_HEADER = "tracestate"
_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True)
class TraceContext:
    """One position in a distributed trace."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits
    flags: str = "01"  # sampled
    tracestate: str | None = None

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags, self.tracestate)


CURRENT: ContextVar[TraceContext | None] = ContextVar("vtp_trace", default=None)


def parse(header: str | None, tracestate: str | None = None) -> TraceContext | None:
    """The caller's context, or None for a missing or invalid header (the spec says: start anew).

    A later version's header is read by its first four fields, as the spec asks.
    """
    match = _PATTERN.match((header or "").strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return TraceContext(trace_id, parent_id, flags, tracestate)


def new_trace() -> TraceContext:
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))


def child(parent: TraceContext | None) -> TraceContext:
    """A new span: of the parent's trace, or of a new trace."""
    return parent.child() if parent is not None else new_trace()


@contextmanager
def adopted(context: TraceContext | None) -> Iterator[TraceContext | None]:
    """`context` is the current trace inside the block (None: no trace), the previous one after.

    Tasks started inside keep it (they copy the context): work that outlives the block stays in it."""
    token = CURRENT.set(context)
    try:
        yield context
    finally:
        CURRENT.reset(token)


def current_trace_id() -> str | None:
    context = CURRENT.get()
    return context.trace_id if context is not None else None


def outgoing_headers() -> dict[str, str]:
    """The current trace as W3C headers for a call to another server (none outside a request).

    The parent id is this service's span of the request, so the callee's span is its child.
    """
    context = CURRENT.get()
    if context is None:
        return {}
    headers = {HEADER: context.traceparent}
    if context.tracestate:
        headers[STATE_HEADER] = context.tracestate
    return headers
