"""One batch attempt on this replica: predict chunk after chunk, store each, then the results.

Each chunk's rows are stored (object `chunks/NNNNNN.jsonl`) before the database moves the
resume point past it, in the same transaction as the progress counts and their event: a worker
that dies between the two leaves the chunk to be predicted and stored again under the same key,
so the results hold each image exactly once, and the chunk is metered only once it is recorded
(usage counts what the batch processed, once). The worker renews its lease while it runs; a lease
that cannot be renewed (another worker took the batch over) stops it without a word. A batch that
ends failed or cancelled gives its unprocessed images back to its quotas (`batch_quota`).
The attempt runs as a span of the trace of the request that created the batch (the command's
`traceparent`, or a new trace): its log lines, progress events and Triton calls carry it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp_dice.archive import ArchiveLimits, open_archive
from vtp_dice.format import DatasetRejected
from vtp_inference.adapters.model_cache import Loaded, ModelIntegrity
from vtp_inference.adapters.runtimes import ModelInvalid, RuntimeUnavailable
from vtp_inference.domain.batch_coco import coco_document
from vtp_inference.domain.batches import Batch, BatchStatus
from vtp_inference.domain.model import DeploymentNotFound, NotServing, RequestRefused
from vtp_inference.service_layer import batch_lifecycle as lifecycle
from vtp_inference.service_layer import batch_metrics, batch_quota
from vtp_inference.service_layer import batch_snapshot as snapshots
from vtp_inference.service_layer.batch_metrics import Chunk
from vtp_inference.service_layer.batch_quota import QuotaReturns
from vtp_inference.service_layer.batch_sources import BatchInput, SnapshotSource, ZipSource
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.predicting import Params, Predictor
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime import failpoints
from vtp_runtime.auth import Principal
from vtp_runtime.storage import ObjectStore, StorageError
from vtp_runtime.telemetry import server_span
from vtp_runtime.tracing import CURRENT, TraceContext

_log = logging.getLogger(__name__)
WORKER_TOKEN = uuid.UUID(int=0)  # the worker acts for the batch's project, not for a token


@dataclass(frozen=True)
class BatchDeps:
    new_uow: NewUow
    store: ObjectStore
    predictor: Predictor
    meter: Meter
    limits: ArchiveLimits
    owner: str
    lease_seconds: float
    heartbeat_seconds: float
    quota: QuotaReturns | None = None


class BatchFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def chunk_key(batch: Batch, index: int) -> str:
    return f"batches/{batch.project_id}/{batch.id}/chunks/{index:06d}.jsonl"


def result_key(batch: Batch, name: str) -> str:
    return f"batches/{batch.project_id}/{batch.id}/{name}"


class BatchRun:
    def __init__(self, batch: Batch, deps: BatchDeps, parent: TraceContext | None = None) -> None:
        """`parent`: the trace context the batch's command carried (None: the run starts a new trace)."""
        self.batch, self.deps, self.parent = batch, deps, parent
        self.lost = False

    async def run(self) -> None:
        """The attempt as a span of the command's trace, current for everything it does (tasks and
        thread-pool jobs it starts copy it)."""
        with server_span("batch run", self.parent) as trace:
            token = CURRENT.set(trace)
            try:
                await self._run()
            finally:
                CURRENT.reset(token)

    async def _run(self) -> None:
        started = time.perf_counter()
        beat = asyncio.create_task(self._heartbeat())
        work = Path(tempfile.mkdtemp(prefix=f"batch-{self.batch.id}-"))
        try:
            status, results, error = await self._execute(work)
        except BatchFailure as exc:
            status, results, error = BatchStatus.FAILED, None, (exc.code, str(exc))
        finally:
            beat.cancel()
            shutil.rmtree(work, ignore_errors=True)
        if status is not None and not self.lost:
            if await lifecycle.finish(self.deps.new_uow, self.batch, self.deps.owner, status, results, error):
                await batch_quota.settle(self.deps.new_uow, self.deps.quota, self.batch.id)
            batch_metrics.attempt_ended(self.batch.deployment_id, status, time.perf_counter() - started)

    async def _execute(self, work: Path) -> tuple[BatchStatus | None, dict[str, Any] | None, tuple[str, str] | None]:
        batch = self.batch
        if batch.cancel_requested:
            return BatchStatus.CANCELLED, None, None
        entry = await self._model()
        inputs = await self._input(work)
        params = Params(**batch.params)
        try:
            for index in range(batch.chunks_done, batch.total_chunks):
                chunk = await self._predict_chunk(entry, inputs, index, params)
                rows = chunk.rows
                body = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()
                await self._put(chunk_key(batch, index), body)
                failed = sum("error" in row for row in rows)
                updated = await lifecycle.record_chunk(
                    self.deps.new_uow, batch, self.deps.owner, index, len(rows), failed
                )
                if updated is None:  # taken over or cancelled and ended elsewhere: stop quietly
                    self.lost = True
                    return None, None, None
                self.batch = batch = updated
                batch_metrics.meter_chunk(self.deps.meter, batch, chunk)  # recorded: metered once
                failpoints.hit("batch.after_chunk")
                if updated.cancel_requested:
                    return BatchStatus.CANCELLED, None, None
        finally:
            inputs.close()
        return BatchStatus.SUCCEEDED, await self._results(entry), None

    async def _model(self) -> Loaded:
        caller = Principal(self.batch.project_id, WORKER_TOKEN)
        try:
            return await self.deps.predictor.loaded(caller, self.batch.deployment_id, split=False)
        except (DeploymentNotFound, NotServing) as exc:
            raise BatchFailure("DEPLOYMENT_NOT_READY", f"the deployment cannot serve: {exc}") from exc
        except (ModelIntegrity, ModelInvalid, RuntimeUnavailable, StorageError) as exc:
            raise BatchFailure("MODEL_UNAVAILABLE", f"the model cannot be loaded: {exc}") from exc

    async def _input(self, work: Path) -> BatchInput:
        """The uploaded zip, verified against the sha256 recorded when it was accepted, or the snapshot."""
        source, path = self.batch.source, work / "input.zip"
        if source["kind"] == "snapshot":
            reader = snapshots.source_of(self.deps.store, source["content_hash"], source["snapshot_id"])
            try:
                await asyncio.to_thread(reader.manifest)  # verified against its content hash
            except (StorageError, ValueError, KeyError) as exc:
                raise BatchFailure("INPUT_NOT_FOUND", f"the snapshot cannot be read: {exc}") from exc
            return SnapshotSource(reader)
        try:
            await self.deps.store.get_file(self.deps.store.parse_uri(source["uri"]), path)
        except StorageError as exc:
            raise BatchFailure("INPUT_NOT_FOUND", f"cannot fetch the uploaded images: {exc}") from exc
        if await asyncio.to_thread(_sha256, path) != source["sha256"]:
            raise BatchFailure("INPUT_CORRUPT", "the stored upload does not match its recorded SHA-256")
        try:
            return ZipSource(await asyncio.to_thread(open_archive, path, self.deps.limits, False))
        except DatasetRejected as exc:
            raise BatchFailure("INPUT_CORRUPT", f"the stored upload cannot be read: {exc}") from exc

    async def _predict_chunk(self, entry: Loaded, inputs: BatchInput, index: int, params: Params) -> Chunk:
        files = self.batch.chunk_files(index)
        first, began = index * self.batch.chunk_size, time.perf_counter()
        blobs = await asyncio.to_thread(inputs.read, files, self.deps.limits.max_image_bytes)
        started = time.perf_counter()

        async def one(i: int, name: str, data: bytes | DatasetRejected) -> dict[str, Any]:
            head = {"index": first + i, "file": name}
            if isinstance(data, DatasetRejected):
                rejected = data.problems[0]
                return {**head, "error": {"code": rejected.code, "message": rejected.message}}
            try:
                [answer] = await self.deps.predictor.predict(entry, [data], params)
            except RequestRefused as exc:
                problem = exc.problems[0]
                return {**head, "error": {"code": problem.code, "message": problem.message}}
            answer.pop("index", None)
            return {**head, **answer}

        rows = list(await asyncio.gather(*(one(i, n, d) for i, (n, d) in enumerate(zip(files, blobs, strict=True)))))
        seconds = time.perf_counter() - started
        predicted = sum("error" not in row for row in rows)
        batch_metrics.chunk_predicted(self.batch.deployment_id, predicted, time.perf_counter() - began)
        return Chunk(rows, sum(len(x) for x in blobs if isinstance(x, bytes)), seconds)

    async def _results(self, entry: Loaded) -> dict[str, Any]:
        """results.jsonl: the chunks in order; coco.json for a detect batch."""
        batch, store = self.batch, self.deps.store
        keys = [chunk_key(batch, k) for k in range(batch.total_chunks)]

        async def chunks() -> AsyncIterator[bytes]:
            for key in keys:
                async for part in store.open_stream(key):
                    yield part

        try:
            info = await store.put_stream(result_key(batch, "results.jsonl"), chunks(), "application/x-ndjson")
            results = {"jsonl": {"uri": info.uri, "sha256": info.sha256, "size_bytes": info.size_bytes}}
            if batch.task_type == "detect":
                rows = [json.loads(line) async for line in _lines(store, keys)]
                names: dict[str, str] = entry.deployment.model_meta["names"]
                body = json.dumps(coco_document(rows, names, batch.source.get("image_ids"))).encode()
                coco = await store.put_bytes(result_key(batch, "coco.json"), body, "application/json")
                results["coco"] = {"uri": coco.uri, "sha256": coco.sha256, "size_bytes": coco.size_bytes}
        except StorageError as exc:
            raise BatchFailure("STORAGE_FAILED", f"storing the results failed: {exc}") from exc
        return results

    async def _put(self, key: str, body: bytes) -> None:
        try:
            await self.deps.store.put_bytes(key, body, "application/x-ndjson")
        except StorageError as exc:
            raise BatchFailure("STORAGE_FAILED", f"storing chunk results failed: {exc}") from exc

    async def _heartbeat(self) -> None:
        d = self.deps
        while True:
            await asyncio.sleep(d.heartbeat_seconds)
            try:
                held = await lifecycle.renew(d.new_uow, self.batch, d.owner, d.lease_seconds)
            except Exception as exc:  # a database blip: the lease outlives a few missed beats
                _log.warning("batch %s: lease renewal failed: %s", self.batch.id, exc)
                continue
            if not held:
                self.lost = True
                return


async def _lines(store: ObjectStore, keys: list[str]) -> AsyncIterator[str]:
    for key in keys:
        data = b"".join([part async for part in store.open_stream(key)])
        for line in data.decode().splitlines():
            if line:
                yield line


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
