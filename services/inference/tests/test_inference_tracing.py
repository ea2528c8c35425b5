"""W3C trace context over gRPC: the metadata codec, and the interceptor on a real in-process grpc.aio
server (the caller's trace current in the handler, `traceparent` answered in the initial metadata,
refusals included; a new trace without one). And the triton runtime forwards the current trace in its
infer's headers (here to a recording client; tests/integration/inference/test_triton_trace.py: a real
Triton records it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from vtp_inference.adapters.triton_runtime import TritonModel, TritonServer
from vtp_inference.entrypoints.grpc_trace import TraceInterceptor, incoming, outgoing
from vtp_runtime.tracing import CURRENT, child, parse

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
HEADER = f"00-{TRACE}-{PARENT}-01"


def test_the_callers_traceparent_and_tracestate_are_read_from_the_metadata() -> None:
    context = incoming([("authorization", "Bearer x"), ("traceparent", HEADER), ("tracestate", "a=1")])
    assert context is not None and (context.trace_id, context.span_id, context.tracestate) == (TRACE, PARENT, "a=1")
    several = incoming([("tracestate", "a=1"), ("traceparent", HEADER), ("tracestate", "b=2")])
    assert several is not None and several.tracestate == "a=1,b=2"  # one list, as repeated HTTP headers
    assert incoming([("traceparent", HEADER)]) == parse(HEADER)


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        [],
        [("tracestate", "a=1")],
        [("traceparent", "garbage")],
        [("traceparent", f"00-{'0' * 32}-{PARENT}-01")],
        [("traceparent", HEADER), ("traceparent", HEADER)],  # W3C: exactly one
        [("traceparent-bin", HEADER.encode())],
    ],
)
def test_a_missing_or_invalid_traceparent_starts_anew(metadata: list[tuple[str, str | bytes]] | None) -> None:
    assert incoming(metadata) is None


def test_the_answer_carries_this_calls_span() -> None:
    mine = parse(HEADER)
    assert mine is not None
    assert outgoing(mine) == (("traceparent", HEADER),)


async def _seen(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    current = CURRENT.get()
    assert current is not None
    if request == b"refuse":
        context.set_trailing_metadata((("vtp-error-code", "model_not_found"),))
        await context.abort(grpc.StatusCode.NOT_FOUND, "model_not_found: no")
    return f"{current.trace_id} {current.span_id} {current.tracestate}".encode()


@pytest.fixture()
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[TraceInterceptor()])
    handlers = {"Seen": grpc.unary_unary_rpc_method_handler(_seen)}  # raw bytes in and out
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Trace", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
            yield opened
    finally:
        await server.stop(None)


def _answered(metadata: grpc.aio.Metadata | None) -> str:
    found = [v for k, v in metadata or () if k == "traceparent"]
    assert len(found) == 1, metadata
    return str(found[0])


async def test_a_call_runs_in_the_callers_trace_and_answers_its_own_span(channel: grpc.aio.Channel) -> None:
    seen = channel.unary_unary("/test.Trace/Seen")
    call = seen(b"", metadata=(("traceparent", HEADER), ("tracestate", "vendor=x")))
    trace_id, span_id, state = (await call).decode().split()
    answered = parse(_answered(await call.initial_metadata()))
    assert (trace_id, state) == (TRACE, "vendor=x")  # the handler ran in the caller's trace
    assert answered is not None and (answered.trace_id, answered.span_id) == (TRACE, span_id) and span_id != PARENT
    assert CURRENT.get() is None  # nothing leaks into the test's own context


async def test_without_a_traceparent_a_new_trace_starts_and_comes_back(channel: grpc.aio.Channel) -> None:
    seen = channel.unary_unary("/test.Trace/Seen")
    call = seen(b"")
    trace_id, span_id, _ = (await call).decode().split()
    answered = parse(_answered(await call.initial_metadata()))
    assert answered is not None and (answered.trace_id, answered.span_id) == (trace_id, span_id) and trace_id != TRACE


async def test_a_refused_call_answers_the_trace_and_keeps_its_trailing_metadata(channel: grpc.aio.Channel) -> None:
    seen = channel.unary_unary("/test.Trace/Seen")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await seen(b"refuse", metadata=(("traceparent", HEADER),))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    answered = parse(_answered(refused.value.initial_metadata()))
    assert answered is not None and answered.trace_id == TRACE
    assert ("vtp-error-code", "model_not_found") in tuple(refused.value.trailing_metadata() or ())


class RecordingClient:
    """Stands in for tritonclient's HTTP client: answers ones and records each infer's headers."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str] | None] = []

    def infer(self, name: str, inputs: list[Any], outputs: list[Any], headers: dict[str, str] | None = None) -> Any:
        self.headers.append(headers)
        answer = np.ones((1, 6, 84), np.float32)
        return type("Answer", (), {"as_numpy": lambda self, n: answer})()


def test_the_triton_runtime_sends_the_current_trace_with_each_infer(tmp_path: Path) -> None:
    client = RecordingClient()
    server = TritonServer("127.0.0.1:1", tmp_path, "python", 1)
    server.client = lambda: client  # type: ignore[method-assign]
    metadata = {
        "inputs": [{"name": "images", "shape": [1, 3, 64, 64]}],
        "outputs": [{"name": "output0", "shape": [1, 6, 84]}],
    }
    model = TritonModel(server, "vtp-d-abc", metadata)
    x = np.zeros((1, 3, 64, 64), np.float32)
    ours = child(parse(HEADER, "vendor=x"))
    token = CURRENT.set(ours)
    try:
        model(x)
    finally:
        CURRENT.reset(token)
    model(x)  # outside a request
    assert client.headers == [{"traceparent": ours.traceparent, "tracestate": "vendor=x"}, {}]
