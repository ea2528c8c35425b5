"""W3C trace context over gRPC: every unary call is a server span of the caller's `traceparent`.

The gRPC counterpart of the HTTP middleware (`vtp_runtime.http.trace_middleware`): the call's
metadata `traceparent` (and `tracestate`) is its parent, or a new trace starts when it is missing
or invalid; the handler runs with it as the current context (so the pool job, the runtime call and
an external Triton server see it) and the answer's initial metadata carries `traceparent`, the same
trace id with this service's span id, as an HTTP answer carries the header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc

from vtp_runtime.telemetry import server_span
from vtp_runtime.tracing import CURRENT, HEADER, STATE_HEADER, TraceContext, parse

Metadata = Iterable[tuple[str, str | bytes]]


def incoming(metadata: Metadata | None) -> TraceContext | None:
    """The caller's context from the call's metadata; None when absent or invalid (start anew).

    Several `traceparent` entries are invalid (W3C: one header); several `tracestate` entries
    are one list, joined by commas as the HTTP spec joins repeated headers.
    """
    parents: list[str] = []
    states: list[str] = []
    for key, value in metadata or ():
        if not isinstance(value, str):  # `-bin` keys carry bytes: never ours
            continue
        if key == HEADER:
            parents.append(value)
        elif key == STATE_HEADER:
            states.append(value)
    if len(parents) != 1:
        return None
    return parse(parents[0], ",".join(states) if states else None)


def outgoing(context: TraceContext) -> tuple[tuple[str, str], ...]:
    """The answer's metadata: this call's own span in the caller's trace."""
    return ((HEADER, context.traceparent),)


Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def traced(method: str, behavior: Behavior) -> Behavior:
    """`behavior` run as a server span named after the gRPC method, its context current."""
    name = method.lstrip("/")  # "inference.GRPCInferenceService/ModelInfer", as OpenTelemetry names RPC spans

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        with server_span(name, incoming(context.invocation_metadata())) as trace:
            token = CURRENT.set(trace)
            try:
                # Initial metadata, sent before the handler runs: refusals (abort) carry it too.
                await context.send_initial_metadata(outgoing(trace))
                return await behavior(request, context)
            finally:
                CURRENT.reset(token)

    return call


class TraceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """Wraps every unary-unary handler in `traced` (the OIP's streaming infer is not served)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            traced(handler_call_details.method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
