"""The gRPC server of the Open Inference Protocol, on the service's event loop, as a supervised task.

It runs beside uvicorn in the same process and loop (grpc.aio), so both transports share the
model cache and the inference pool; each call runs in its W3C trace context (`grpc_trace`). A
server that fails (its port taken) is restarted with backoff and named by `/health` like any
background task.
"""

from __future__ import annotations

import asyncio

import grpc

from vtp_inference.entrypoints.grpc_trace import TraceInterceptor
from vtp_inference.entrypoints.oip_grpc import OipServicer
from vtp_inference.entrypoints.oip_proto.grpc_service_pb2_grpc import add_GRPCInferenceServiceServicer_to_server
from vtp_runtime.supervision import Background

GRACE_SECONDS = 5.0


def grpc_server(servicer: OipServicer, host: str, port: int, max_message_bytes: int) -> Background:
    async def run(stop: asyncio.Event) -> None:
        limits = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", -1)]
        server = grpc.aio.server(options=limits, interceptors=[TraceInterceptor()])  # traceparent in and out
        add_GRPCInferenceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]  # generated
        server.add_insecure_port(f"{host}:{port}")  # raises when the port cannot be bound
        await server.start()
        try:
            await stop.wait()
        finally:
            await server.stop(GRACE_SECONDS)  # calls in flight finish; new ones are refused

    return Background("grpc server", run)
