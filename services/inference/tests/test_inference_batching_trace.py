"""A micro-batch's trace: its runtime call runs in a span of its own, a child of the first waiting
request's span linked to the others', and forwards that span's `traceparent` (what the `triton`
runtime sends to Triton); the callers keep their own contexts. A fake runtime records the headers
it was called with (`vtp_runtime.tracing.outgoing_headers`, as the triton runtime reads them).
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from vtp_inference.service_layer.batching import MicroBatcher, batching
from vtp_runtime import telemetry
from vtp_runtime.tracing import CURRENT, TraceContext, new_trace, outgoing_headers, parse


class HeaderRecordingRuntime:
    """Doubles its input; records the batch sizes and the trace headers of each call."""

    platform, input_name, output_name = "fake", "images", "output0"
    input_shape: list[Any] = ["batch", 3, 4, 4]
    output_shape: list[Any] = ["batch", 3, 4, 4]

    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, str]]] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls.append((len(x), outgoing_headers()))
        return x * 2


def _image(value: float) -> np.ndarray:
    return np.full((1, 3, 4, 4), value, np.float32)


async def _traced_call(batcher: MicroBatcher, value: float, trace: TraceContext | None) -> TraceContext | None:
    """One request's call in its own context (as a request's job is); its context after the answer."""
    CURRENT.set(trace)  # this task's own copy of the context
    await batcher(_image(value))
    return CURRENT.get()


async def test_a_batch_forwards_a_child_span_of_its_first_traced_caller_and_callers_keep_theirs() -> None:
    runtime = HeaderRecordingRuntime()
    batcher = MicroBatcher(runtime, max_batch=4, max_delay=5.0)
    traces = [None, new_trace(), new_trace(), new_trace()]  # the first caller has none: the next one leads
    after = await asyncio.gather(*(_traced_call(batcher, i, t) for i, t in enumerate(traces)))
    [(rows, headers)] = runtime.calls
    sent = parse(headers["traceparent"])
    assert rows == 4 and sent is not None and traces[1] is not None
    assert sent.trace_id == traces[1].trace_id and sent.span_id != traces[1].span_id  # the batch's own span
    assert after == traces  # each request's context is its own still
    assert CURRENT.get() is None


async def test_a_batch_without_traced_callers_sends_no_headers() -> None:
    runtime = HeaderRecordingRuntime()
    batcher = MicroBatcher(runtime, max_batch=2, max_delay=5.0)
    await asyncio.gather(_traced_call(batcher, 1, None), _traced_call(batcher, 2, None))
    assert runtime.calls == [(2, {})]


async def test_with_an_exporter_the_batch_is_a_span_linked_to_every_other_caller() -> None:
    exporter = InMemorySpanExporter()
    assert telemetry.configure("inference-test", exporter)
    runtime = HeaderRecordingRuntime()
    try:
        batcher = MicroBatcher(runtime, max_batch=3, max_delay=5.0)
        first = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=x")
        traces = [first, new_trace(), first]  # two images of one request: linked once
        await asyncio.gather(*(_traced_call(batcher, i, t) for i, t in enumerate(traces)))
        telemetry.flush()
    finally:
        telemetry.disable()
    [span] = [s for s in exporter.get_finished_spans() if s.name == "inference batch"]
    assert first is not None and traces[1] is not None and span.parent is not None
    assert f"{span.context.trace_id:032x}" == first.trace_id
    assert f"{span.parent.span_id:016x}" == first.span_id
    links = [(f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in span.links]
    assert links == [(traces[1].trace_id, traces[1].span_id)]
    [(_, headers)] = runtime.calls
    assert headers == {"traceparent": f"00-{first.trace_id}-{span.context.span_id:016x}-01", "tracestate": "vendor=x"}


async def test_worker_threads_calls_through_the_wrapper_carry_their_requests_trace_into_the_batch() -> None:
    runtime = HeaderRecordingRuntime()
    executor = ThreadPoolExecutor(1)
    wrapped = batching("on", 2, 5.0, executor)(runtime)
    loop = asyncio.get_running_loop()
    traces = [new_trace(), new_trace()]

    def job(value: float, trace: TraceContext) -> np.ndarray:  # a request's job on a predict worker thread
        CURRENT.set(trace)
        result: np.ndarray = wrapped(_image(value))
        return result

    with ThreadPoolExecutor(2) as workers:
        runs = [loop.run_in_executor(workers, contextvars.copy_context().run, job, i, t) for i, t in enumerate(traces)]
        await asyncio.gather(*runs)
    [(rows, headers)] = runtime.calls
    sent = parse(headers["traceparent"])
    assert rows == 2 and sent is not None and sent.trace_id in {t.trace_id for t in traces}
    executor.shutdown()
