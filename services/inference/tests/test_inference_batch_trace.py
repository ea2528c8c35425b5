"""A batch runs in the trace of the request that created it: the worker takes a `batch.requested.v1`
record and the run (its predictions, hence the triton runtime's headers, and its progress events)
sees the command's trace id in a span of its own; a command without `traceparent` starts a new trace.
With fakes: the claim and chunk bookkeeping are stubbed, the store and predictor are in memory."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from vtp_contracts.catalog import BATCH_REQUESTED
from vtp_contracts.events.batches import BatchRequested
from vtp_dice.archive import ArchiveLimits
from vtp_inference.domain.batches import Batch, BatchStatus
from vtp_inference.entrypoints.batch_worker import BatchWorker
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_inference.service_layer.batch_run import BatchDeps
from vtp_runtime.messaging.cloudevents import kafka_headers, make_event
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.tracing import CURRENT, TraceContext, current_trace_id, outgoing_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REQUEST = TraceContext(TRACE, "00f067aa0ba902b7", "01", "vtp=1")  # the API request that submitted the batch
FILES = ["a.jpg", "b.jpg", "c.jpg"]


@dataclass
class Record:
    """The part of an aiokafka ConsumerRecord the worker reads."""

    headers: list[tuple[str, bytes]]
    value: bytes


class FakeStore:
    def __init__(self, upload: bytes) -> None:
        self.upload = upload
        self.put: dict[str, bytes] = {}

    def parse_uri(self, uri: str) -> str:
        return uri

    async def get_file(self, location: str, path: Path) -> None:
        await asyncio.to_thread(path.write_bytes, self.upload)

    async def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        self.put[key] = body


class FakePredictor:
    """Records, per image, the trace id and the headers an outgoing (Triton) call would carry."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, dict[str, str]]] = []

    async def loaded(self, *args: Any, **kwargs: Any) -> object:
        return object()

    async def predict(self, entry: object, images: list[bytes], params: object) -> list[dict[str, Any]]:
        self.seen.append((current_trace_id(), outgoing_headers()))
        return [{"index": 0, "classes": [], "timings_ms": {"inference": 1.0}}]


class FakeMeter:
    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


def _upload() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in FILES:
            zf.writestr(name, b"image bytes: the fake predictor does not decode them")
    return out.getvalue()


def _batch(upload: bytes) -> Batch:
    source = {"kind": "upload", "uri": "s3://b/in.zip", "sha256": hashlib.sha256(upload).hexdigest(), "files": FILES}
    params = {"conf": 0.25, "iou": 0.7, "max_det": 300, "classes": None}
    return Batch(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), None, BatchStatus.RUNNING, "classify",
        source, params, len(FILES), 2, datetime.now(UTC),
    )  # fmt: skip


def _record(batch: Batch, with_trace: bool) -> Record:
    data = BatchRequested(
        batch_id=batch.id, project_id=batch.project_id, deployment_id=batch.deployment_id,
        attempt=batch.attempt, occurred_at=batch.created_at,
    )  # fmt: skip
    token = CURRENT.set(REQUEST if with_trace else None)  # staged while serving the request, as the API does
    try:
        event = make_event(BATCH_REQUESTED, data, "inference")
    finally:
        CURRENT.reset(token)
    headers = {k: v for k, v in event.headers.items() if with_trace or not k.startswith("trace")}
    return Record(kafka_headers(headers), event.value)


async def _run_one(monkeypatch: pytest.MonkeyPatch, with_trace: bool) -> tuple[FakePredictor, list[str | None]]:
    """Take one command, run its batch to the end (two chunks); the trace ids progress was recorded in."""
    upload = _upload()
    batch, predictor, progress = _batch(upload), FakePredictor(), list[str | None]()

    async def claim(*args: Any) -> Batch:
        return batch

    async def record_chunk(new_uow: Any, current: Batch, owner: str, index: int, *counts: int) -> Batch:
        progress.append(current_trace_id())  # batch.progress.v1 is staged here: it carries this trace
        return replace(current, chunks_done=index + 1, cancel_requested=index == 1)  # cancelled: no results

    async def finish(*args: Any) -> bool:
        progress.append(current_trace_id())
        return True

    monkeypatch.setattr(lifecycle, "claim", claim)
    monkeypatch.setattr(lifecycle, "record_chunk", record_chunk)
    monkeypatch.setattr(lifecycle, "finish", finish)
    deps = BatchDeps(
        new_uow=cast(Any, None), store=cast(Any, FakeStore(upload)), predictor=cast(Any, predictor),
        meter=cast(Any, FakeMeter()), limits=ArchiveLimits(), owner="replica-1", lease_seconds=30,
        heartbeat_seconds=3600,
    )  # fmt: skip
    worker = BatchWorker(deps, "unused:9092", 1, cast(DeadLetters, None))
    assert await worker._take(cast(Any, _record(batch, with_trace)))
    assert CURRENT.get() is None  # the take loop itself stays outside the command's trace
    [(_, task)] = worker.running.values()
    await task
    assert len(predictor.seen) == len(FILES) and len(progress) == 3  # two chunks, then the end
    return predictor, progress


async def test_the_batch_runs_in_the_trace_of_the_request_that_created_it(monkeypatch: pytest.MonkeyPatch) -> None:
    predictor, progress = await _run_one(monkeypatch, with_trace=True)
    assert progress == [TRACE] * 3
    spans = set()
    for trace_id, headers in predictor.seen:
        assert trace_id == TRACE and headers["tracestate"] == "vtp=1"
        version, trace, span, flags = headers["traceparent"].split("-")
        assert (version, trace, flags) == ("00", TRACE, "01")
        spans.add(span)
    assert len(spans) == 1 and REQUEST.span_id not in spans  # one span of its own: the batch run


async def test_a_command_without_traceparent_runs_in_a_new_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    predictor, progress = await _run_one(monkeypatch, with_trace=False)
    [trace_id] = {trace_id for trace_id, _ in predictor.seen}
    assert trace_id is not None and trace_id != TRACE and progress == [trace_id] * 3
    assert all(headers["traceparent"].split("-")[1] == trace_id for _, headers in predictor.seen)
