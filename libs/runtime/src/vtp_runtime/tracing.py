"""W3C Trace Context (``traceparent``): accepted on every request, made when absent, answered back.

The request's context lives in a contextvar, so everything the request runs sees it: log lines
(see :mod:`vtp_runtime.logging`), and work handed to threads with ``asyncio.to_thread`` (which
copies the context; an executor needs ``contextvars.copy_context().run``), such as an inference
runtime call. Spans are recorded only when exporting (see :mod:`vtp_runtime.telemetry`).
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

HEADER = "traceparent"
_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits: this service's span of the trace
    flags: str = "01"  # sampled

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


CURRENT: ContextVar[TraceContext | None] = ContextVar("vtp_trace", default=None)


def parse(header: str | None) -> TraceContext | None:
    """The caller's context, or None for a missing or invalid header (the spec says: start anew)."""
    match = _PATTERN.match((header or "").strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return TraceContext(trace_id, parent_id, flags)


def child(parent: TraceContext | None) -> TraceContext:
    """This service's span: the caller's trace id (or a new one) with a fresh span id."""
    if parent is None:
        return TraceContext(secrets.token_hex(16), secrets.token_hex(8))
    return TraceContext(parent.trace_id, secrets.token_hex(8), parent.flags)


def current_trace_id() -> str | None:
    context = CURRENT.get()
    return context.trace_id if context is not None else None
