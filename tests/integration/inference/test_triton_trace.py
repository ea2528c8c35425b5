"""The trace context reaches an external Triton server: the triton runtime's infer sends the request's
`traceparent`, and the real Triton (2.51 from the nvidia-pytriton wheel, run here with OpenTelemetry
tracing to an in-test OTLP/HTTP receiver) records its span in our trace, as a child of our span.

A Triton of its own (the stack's runs without tracing), on a tiny identity model; no stack needed."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from vtp_inference.adapters.triton_runtime import TritonModel, TritonServer
from vtp_localstack import triton
from vtp_localstack.config import StackConfig
from vtp_localstack.ports import free_port
from vtp_localstack.processes import ProcessTable, wait_until
from vtp_runtime.tracing import CURRENT, child, parse

pytestmark = pytest.mark.integration
SHAPE = [1, 3, 4, 4]
CONFIG = """name: "model"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [{ name: "images" data_type: TYPE_FP32 dims: [1, 3, 4, 4] }]
output [{ name: "output0" data_type: TYPE_FP32 dims: [1, 3, 4, 4] }]
instance_group [{ kind: KIND_CPU count: 1 }]
"""


def _exported(body: bytes) -> list[dict[str, str]]:
    """The spans of one OTLP/HTTP JSON export (Triton's exporter sends JSON, the ids in hex)."""
    document = json.loads(body)
    spans = [s for r in document["resourceSpans"] for scope in r["scopeSpans"] for s in scope["spans"]]
    keys = {"trace_id": "traceId", "span_id": "spanId", "parent": "parentSpanId", "state": "traceState", "name": "name"}
    return [{k: str(s.get(v, "")) for k, v in keys.items()} for s in spans]


class Receiver:
    """An OTLP/HTTP trace receiver (POST /v1/traces, JSON): the spans Triton exports."""

    def __init__(self) -> None:
        self.spans: list[dict[str, str]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                assert self.headers.get("Content-Type") == "application/json", self.headers  # else: say so
                receiver.add(_exported(body))
                answer = b"{}"  # an ExportTraceServiceResponse: everything accepted
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def add(self, spans: list[dict[str, str]]) -> None:
        with self._lock:
            self.spans += spans

    def of_trace(self, trace_id: str) -> list[dict[str, str]]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@pytest.fixture(scope="module")
def traced_triton(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TritonServer]:
    """tritonserver as the stack starts it, on its own port and repository, tracing every request."""
    base = StackConfig()
    assert triton.available(base), "tritonserver is not fetched: run `python -m vtp_localstack.triton fetch`"
    run = tmp_path_factory.mktemp("traced-triton")
    cfg = base.model_copy(update={"run_dir": run, "triton_port": free_port(), "host": "127.0.0.1"})
    spec = triton.triton_spec(cfg)
    trace = [
        "mode=opentelemetry",
        f"opentelemetry,url={receiver.url}",
        "opentelemetry,bsp_schedule_delay=100",  # export within a tenth of a second, not every 5 s
        "opentelemetry,resource=service.name=triton",
        "rate=1",  # every request
        "level=TIMESTAMPS",
    ]
    argv = [*spec.argv, *(f"--trace-config={t}" for t in trace)]
    table = ProcessTable(run)
    table.start(dataclasses.replace(spec, argv=argv))
    server = TritonServer(f"127.0.0.1:{cfg.triton_port}", triton.model_repository(cfg), "python", 1)
    try:
        wait_until(server.live, 60, "traced tritonserver", interval=0.2)
        yield server
    finally:
        server.client().close()  # else Triton waits out its exit timeout for the open connection
        table.stop(spec.name)
        print((run / "logs" / f"{spec.name}.log").read_text()[-3000:])  # shown when the test fails


def _identity_model() -> bytes:
    tensor = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])],
        "identity",
        [tensor("images", TensorProto.FLOAT, SHAPE)],
        [tensor("output0", TensorProto.FLOAT, SHAPE)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what the onnxruntime here reads
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _spans(receiver: Receiver, trace_id: str) -> list[dict[str, str]]:
    deadline = time.monotonic() + 15
    while not (found := receiver.of_trace(trace_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_the_requests_traceparent_reaches_triton_and_its_span_is_a_child_of_ours(
    traced_triton: TritonServer, receiver: Receiver
) -> None:
    model: TritonModel = traced_triton.load([_identity_model(), CONFIG.encode()], "trace-test")
    x = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    ours = child(parse(f"00-{'ab' * 16}-{'cd' * 8}-01", "vendor=x"))  # this service's span of a request
    token = CURRENT.set(ours)
    try:
        assert np.array_equal(model(x), x)
    finally:
        CURRENT.reset(token)
    spans = _spans(receiver, ours.trace_id)
    assert spans, f"Triton exported no span of our trace; it exported {receiver.spans}"
    [request] = [s for s in spans if s["parent"] == ours.span_id]  # Triton's request span, under ours
    assert request["name"] == "InferRequest" and request["state"] == "vendor=x", spans  # tracestate kept
    assert {s["name"] for s in spans} >= {"InferRequest", model.name}, spans  # its model's span in our trace

    before = {s["trace_id"] for s in receiver.spans}
    assert np.array_equal(model(x), x)  # outside a request: no header sent, Triton starts a trace of its own
    deadline = time.monotonic() + 15
    while not ({s["trace_id"] for s in receiver.spans} - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {s["trace_id"] for s in receiver.spans} - before, "Triton traced no request made outside a request"
