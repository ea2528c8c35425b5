"""Batch inference against the predict API: images per second over the same images, in one process.

One yolo11n detect model (its yaml, random weights: the compute of a trained one) exported to ONNX
at `--imgsz`, loaded once into the real Predictor (the service's `VTP_INFERENCE_WORKERS`, default 1).

- predict API (baseline): the real predict route (`build_predict_router`: multipart parsing, decode,
  letterbox, ONNX Runtime, NMS, answer) through an in-process ASGI client, one image per request;
  a probe over 300 images at concurrency 1, 2, 4 and 8 picks the best, which is the baseline.
- batch: the real worker code (`BatchRun`: the zip fetched from object storage and verified by
  sha256, entries read through vtp_dice's capped reader, chunks predicted, each chunk stored as
  JSON Lines in a local object store, then results.jsonl and coco.json) over a zip of the same
  images. The database steps (claim, one transaction per chunk, the end) are replaced by in-memory
  stand-ins: one small transaction per chunk (64 images by default) is not what this measures.

The two alternate `--rounds` times over all `--images` (a shared machine's load drifts); prints
images per second of each, the ratio per round and its median (target >= 0.9).

    python bench/batch_throughput.py [--images 2000] [--imgsz 160] [--chunk 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import tempfile
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI
from PIL import Image

from vtp_dice.archive import ArchiveLimits
from vtp_inference.adapters.model_cache import Loaded
from vtp_inference.adapters.onnx_runtime import OnnxModel
from vtp_inference.domain.batches import Batch, BatchStatus
from vtp_inference.domain.model import Deployment, Status
from vtp_inference.entrypoints.predict_http import build_predict_router
from vtp_inference.predict.images import Limits
from vtp_inference.service_layer import batch_lifecycle
from vtp_inference.service_layer.batch_run import BatchDeps, BatchRun
from vtp_inference.service_layer.cores import CoreScheduler
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.predicting import Predictor
from vtp_runtime.auth import Principal
from vtp_runtime.storage.local import LocalObjectStore

PROJECT, TOKEN = uuid.uuid4(), uuid.uuid4()


def export_model(root: Path, imgsz: int) -> bytes:
    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    cwd = Path.cwd()
    os.chdir(root)
    try:
        out = YOLO("yolo11n.yaml", task="detect").export(format="onnx", imgsz=imgsz, verbose=False)
    finally:
        os.chdir(cwd)
    return (root / Path(out).name).read_bytes()


class OneModel(Predictor):
    """The real Predictor with its model already loaded (no database, no object storage)."""

    def __init__(self, entry: Loaded, workers: int) -> None:
        super().__init__(None, Limits(20 << 20, 40_000_000), CoreScheduler(workers, adaptive=False))  # type: ignore[arg-type]
        self._entry = entry

    async def loaded(self, caller: Principal, deployment_id: uuid.UUID, *args: Any, **kwargs: Any) -> Loaded:
        return self._entry


class OpenAccess:
    def require_scope(self, principal: Principal, scope: str, deployment_id: uuid.UUID) -> None:
        return None

    async def admit(self, principal: Principal, deployment_id: uuid.UUID, images: int) -> Any:
        class Admitted:
            headers: dict[str, str] = {}

            async def release(self) -> None:
                return None

        return Admitted()


class NoStore:
    async def apply(self, batch: Any) -> bool:
        return True


def app_for(predictor: Predictor, meter: Meter) -> FastAPI:
    app = FastAPI()
    app.include_router(build_predict_router(predictor, 16, 20 << 20, meter, OpenAccess()))  # type: ignore[arg-type]

    @app.middleware("http")
    async def principal(request: Any, call_next: Any) -> Any:
        request.state.principal = Principal(PROJECT, TOKEN)
        return await call_next(request)

    return app


def stand_in_database() -> None:
    """The lifecycle's database steps, in memory (the chunk bookkeeping stays the real object's)."""

    async def record_chunk(new_uow: Any, batch: Batch, owner: str, index: int, processed: int, failed: int) -> Batch:
        batch.chunks_done, batch.processed_images = index + 1, batch.processed_images + processed
        batch.failed_images += failed
        return batch

    async def finish(new_uow: Any, batch: Batch, owner: str, status: BatchStatus, *args: Any) -> bool:
        batch.status = status
        return True

    async def renew(*args: Any) -> bool:
        return True

    batch_lifecycle.record_chunk, batch_lifecycle.finish = record_chunk, finish  # type: ignore[assignment]
    batch_lifecycle.renew = renew  # type: ignore[assignment]


def images(count: int) -> list[bytes]:
    rng = np.random.default_rng(5)
    out = []
    for _ in range(count):
        pixels = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


async def predict_api(predictor: Predictor, data: list[bytes], concurrency: int) -> float:
    meter = Meter(NoStore())  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app_for(predictor, meter))
    url = f"/api/v1/deployments/{uuid.uuid4()}/predict"
    queue = list(enumerate(data))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:

        async def worker() -> None:
            while queue:
                i, body = queue.pop()
                response = await client.post(url, files=[("file", (f"{i}.jpg", body))])
                assert response.status_code == 200, response.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(data) / (time.perf_counter() - started)


async def batch_run(predictor: Predictor, entry: Loaded, data: list[bytes], chunk: int, root: Path) -> float:
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    store = LocalObjectStore(root / "store", "bench", sync_each_write=False)
    zipped = root / "input.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for i, body in enumerate(data):
            zf.writestr(f"{i:05d}.jpg", body)
    info = await store.put_file("batches/input.zip", zipped, "application/zip")
    files = [f"{i:05d}.jpg" for i in range(len(data))]
    d = entry.deployment
    batch = Batch(
        uuid.uuid4(), PROJECT, d.id, None, BatchStatus.RUNNING, "detect",
        {"kind": "zip", "uri": info.uri, "sha256": info.sha256, "files": files},
        {"conf": d.conf, "iou": d.iou, "max_det": d.max_det, "classes": None},
        len(files), chunk, datetime.now(UTC),
    )  # fmt: skip
    deps = BatchDeps(None, store, predictor, Meter(NoStore()), ArchiveLimits(), "bench", 60, 30)  # type: ignore[arg-type]
    started = time.perf_counter()
    await BatchRun(batch, deps).run()
    seconds = time.perf_counter() - started
    assert batch.status == BatchStatus.SUCCEEDED and batch.processed_images == len(files), batch
    return len(files) / seconds


async def run(count: int, imgsz: int, chunk: int, workers: int, rounds: int) -> None:
    stand_in_database()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = export_model(root, imgsz)
        now = datetime.now(UTC)
        d = Deployment(uuid.uuid4(), PROJECT, "bench", uuid.uuid4(), "onnxruntime", now, now, Status.READY)
        d.model_meta = {"names": {str(i): f"c{i}" for i in range(80)}, "imgsz": imgsz}
        threads = max(1, (os.cpu_count() or 1) // workers)
        entry = Loaded(d, OnnxModel(model, threads), len(model), 0.0)
        predictor = OneModel(entry, workers)
        data = images(count)
        await predict_api(predictor, data[:50], 2)  # warm-up
        print(f"{count} images 160x120 JPEG, yolo11n at {imgsz} px, {workers} inference worker(s), {threads} thread(s)")
        probe = data[: min(count, 300)]
        rates = {c: await predict_api(predictor, probe, c) for c in (1, 2, 4, 8)}
        print("predict API probe (" + str(len(probe)) + " images): "
              + ", ".join(f"concurrency {c}: {r:.1f}/s" for c, r in rates.items()))  # fmt: skip
        best = max(rates, key=lambda c: rates[c])
        ratios = []
        for i in range(rounds):  # alternated, so both see the same (shared, noisy) machine
            api = await predict_api(predictor, data, best)
            batch = await batch_run(predictor, entry, data, chunk, root / f"round-{i}")
            ratios.append(batch / api)
            print(f"round {i + 1}: predict API (concurrency {best}) {api:7.1f} images/s, "
                  f"batch (chunks of {chunk}) {batch:7.1f} images/s, ratio {batch / api:.2f}")  # fmt: skip
        print(f"ratio batch / predict API at its best concurrency ({best}): median {statistics.median(ratios):.2f}")
        predictor.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="VTP_INFERENCE_WORKERS")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of predict API and batch")
    args = parser.parse_args()
    asyncio.run(run(args.images, args.imgsz, args.chunk, args.workers, args.rounds))


if __name__ == "__main__":
    main()
