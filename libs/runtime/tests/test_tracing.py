"""W3C traceparent: parsing, a fresh one when absent, the response header, and log lines."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vtp_runtime import telemetry
from vtp_runtime.http.trace_middleware import TraceMiddleware
from vtp_runtime.logging import JsonFormatter
from vtp_runtime.messaging.tracing import outgoing_trace
from vtp_runtime.tracing import CURRENT, child, current_trace_id, outgoing_headers, parse

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEADER = f"00-{TRACE}-00f067aa0ba902b7-01"


def test_parse_accepts_a_valid_header_and_refuses_invalid_ones() -> None:
    context = parse(HEADER)
    assert context is not None and (context.trace_id, context.span_id, context.flags) == (
        TRACE,
        "00f067aa0ba902b7",
        "01",
    )
    assert parse(HEADER.upper()) == context  # case is normalised
    assert parse("01-" + HEADER[3:] + "-future") is not None  # a later version may add fields
    for bad in (
        None,
        "",
        "garbage",
        "ff-" + HEADER[3:],  # version ff is invalid
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        HEADER + "-extra",  # version 00 has exactly four fields
        HEADER[:-1],
    ):
        assert parse(bad) is None, bad


def test_child_keeps_the_trace_and_makes_a_new_span() -> None:
    parent = parse(HEADER)
    mine = child(parent)
    assert mine.trace_id == TRACE and mine.span_id != "00f067aa0ba902b7" and mine.flags == "01"
    fresh = child(None)
    assert parse(fresh.traceparent) == fresh and fresh.trace_id != TRACE


def _stage() -> str | None:
    telemetry.stages(telemetry.now_ns(), [("preprocess", 0.001), ("inference", 0.002)])
    return current_trace_id()


async def _seen(request: Request) -> JSONResponse:
    inner = await asyncio.to_thread(_stage)  # what a runtime call in a worker thread sees
    event = outgoing_trace()  # an event staged while serving the request
    return JSONResponse({"trace_id": current_trace_id(), "in_thread": inner, "event": event.traceparent})


def _client() -> httpx.AsyncClient:
    app = TraceMiddleware(Starlette(routes=[Route("/", _seen)]))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_middleware_carries_the_callers_trace_into_the_request_and_answers_it() -> None:
    async with _client() as client:
        response = await client.get("/", headers={"traceparent": HEADER})
    body = response.json()
    assert (body["trace_id"], body["in_thread"]) == (TRACE, TRACE)
    answered = parse(response.headers["traceparent"])
    assert answered is not None and answered.trace_id == TRACE and answered.span_id != "00f067aa0ba902b7"
    event = parse(body["event"])  # the event is a child span of the request's: the trace goes on through Kafka
    assert event is not None and event.trace_id == TRACE and event.span_id not in (answered.span_id, "00f067aa0ba902b7")
    assert CURRENT.get() is None  # reset after the request


async def test_middleware_makes_a_trace_when_absent_or_invalid() -> None:
    async with _client() as client:
        for headers in ({}, {"traceparent": "nonsense"}):
            response = await client.get("/", headers=headers)
            answered = parse(response.headers["traceparent"])
            assert answered is not None and response.json()["trace_id"] == answered.trace_id


def test_json_log_lines_carry_the_trace_id_of_their_request() -> None:
    formatter = JsonFormatter("svc")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(formatter.format(record))
    token = CURRENT.set(child(parse(HEADER)))
    try:
        assert json.loads(formatter.format(record))["trace_id"] == TRACE
    finally:
        CURRENT.reset(token)


async def test_with_an_exporter_the_request_and_its_stages_are_spans_of_the_callers_trace() -> None:
    exporter = InMemorySpanExporter()
    assert telemetry.configure("svc", exporter)
    try:
        async with _client() as client:
            response = await client.get("/", headers={"traceparent": HEADER})
        telemetry.flush()
    finally:
        telemetry.disable()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /", "preprocess", "inference"}
    server, answered = spans["GET /"], parse(response.headers["traceparent"])
    assert answered is not None and server.parent is not None
    assert (f"{server.context.trace_id:032x}", f"{server.parent.span_id:016x}") == (TRACE, "00f067aa0ba902b7")
    assert f"{server.context.span_id:016x}" == answered.span_id  # the header names the service's span
    for stage in ("preprocess", "inference"):
        parent = spans[stage].parent
        assert parent is not None and parent.span_id == server.context.span_id
    assert spans["inference"].start_time == spans["preprocess"].end_time  # consecutive, as timed


def test_outgoing_headers_name_the_current_span_and_keep_the_tracestate() -> None:
    assert outgoing_headers() == {}  # outside a request: nothing to forward
    mine = child(parse(HEADER, "vendor=x"))
    token = CURRENT.set(mine)
    try:
        assert outgoing_headers() == {"traceparent": mine.traceparent, "tracestate": "vendor=x"}
    finally:
        CURRENT.reset(token)
    token = CURRENT.set(child(parse(HEADER)))
    try:
        assert set(outgoing_headers()) == {"traceparent"}  # no tracestate received, none sent
    finally:
        CURRENT.reset(token)
