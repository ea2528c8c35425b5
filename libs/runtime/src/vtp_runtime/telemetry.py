"""OpenTelemetry spans, exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Without it nothing is recorded and the hot path pays nothing (no span objects at all): the
request's W3C context still travels (see :mod:`vtp_runtime.tracing`). With it, each request is
a server span (the caller's ``traceparent`` its parent) and a service adds child spans for its
stages, e.g. inference's decode, preprocess, inference and postprocess.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags

from vtp_runtime.tracing import TraceContext, child

_tracer = trace.get_tracer("vtp")
_enabled = False
_provider: TracerProvider | None = None


def configure(service: str, exporter: SpanExporter | None = None) -> bool:
    """Export spans when an OTLP endpoint is configured (or `exporter` is given: tests)."""
    global _enabled, _tracer, _provider
    if _enabled:  # one provider per process
        return True
    if exporter is None:
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # reads the standard OTEL_EXPORTER_OTLP_* variables
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer, _enabled, _provider = provider.get_tracer("vtp"), True, provider
    return True


def flush() -> None:
    """Export every finished span now (they leave in batches; tests read them at once)."""
    if _provider is not None:
        _provider.force_flush()


def disable() -> None:
    global _enabled, _provider
    _enabled, _provider = False, None


def _span_context(of: TraceContext) -> SpanContext:
    return SpanContext(int(of.trace_id, 16), int(of.span_id, 16), True, TraceFlags(int(of.flags, 16)))


def _remote(parent: TraceContext) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(_span_context(parent)))


def _context_of(span: Span, tracestate: str | None) -> TraceContext:
    c = span.get_span_context()
    return TraceContext(f"{c.trace_id:032x}", f"{c.span_id:016x}", f"{int(c.trace_flags):02x}", tracestate)


@contextmanager
def server_span(name: str, parent: TraceContext | None) -> Iterator[TraceContext]:
    """This service's span of a request: recorded when exporting, else just a fresh span id."""
    if not _enabled:
        yield child(parent)
        return
    remote = _remote(parent) if parent is not None else None
    with _tracer.start_as_current_span(name, context=remote, kind=SpanKind.SERVER) as span:
        yield _context_of(span, parent.tracestate if parent is not None else None)


@contextmanager
def linked_span(name: str, parent: TraceContext, links: Sequence[TraceContext] = ()) -> Iterator[TraceContext]:
    """A span of work done for several requests at once (a micro-batch): a child of `parent` (one of
    them) with a span link to each of the others; when not exporting, just a fresh span of `parent`'s trace."""
    if not _enabled:
        yield parent.child()
        return
    linked = [Link(_span_context(other)) for other in links]
    with _tracer.start_as_current_span(name, context=_remote(parent), links=linked) as span:
        yield _context_of(span, parent.tracestate)


def stages(started_ns: int, seconds: Sequence[tuple[str, float]]) -> None:
    """Consecutive child spans of the current span, from `started_ns` (``time.time_ns()``), timed already."""
    if not _enabled:
        return
    at = started_ns
    for name, duration in seconds:
        end = at + int(duration * 1e9)
        _tracer.start_span(name, start_time=at).end(end_time=end)
        at = end


def now_ns() -> int:
    return time.time_ns()
