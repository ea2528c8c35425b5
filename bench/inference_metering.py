"""What usage metering costs a predict request: p50/p99 with metering on against off, in one process.

Two copies of the inference service's predict route (`build_predict_router`, the real code: request
parsing, decode, letterbox, ONNX Runtime, NMS, answer) share one Predictor and one loaded model; one
copy meters into a Meter whose flush loop runs every 0.5 s into an in-memory store (a PostgreSQL
round trip happens off the request path, in the background task: not what this measures), the
other has metering off. Requests alternate between the two through an in-process ASGI client, so
both see the same machine load. The model is a tiny detect-shaped ONNX graph (a reshape): predict
itself is as cheap as it gets, so the ratios are the worst case; the differences in ms are what
metering adds to any model.

Also: the cost of one `record_request` call on its own.

    python bench/inference_metering.py [--requests 1000] [--imgsz 64]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import io
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import onnx
from fastapi import FastAPI
from onnx import TensorProto, helper
from PIL import Image

from vtp_inference.adapters.model_cache import Loaded
from vtp_inference.adapters.onnx_runtime import OnnxModel
from vtp_inference.domain.model import Deployment, Status
from vtp_inference.domain.usage import Batch
from vtp_inference.entrypoints.metered import record_request
from vtp_inference.entrypoints.predict_http import build_predict_router
from vtp_inference.predict.images import Limits
from vtp_inference.service_layer.cores import CoreScheduler
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.predicting import Predictor
from vtp_runtime.auth import Principal

PROJECT, TOKEN = uuid.uuid4(), uuid.uuid4()


def tiny_detector(imgsz: int, classes: int = 2) -> bytes:
    """[1, 3, s, s] -> [1, 4 + classes, anchors] by a reshape: a valid detect interface, nearly free to run."""
    anchors = 3 * imgsz * imgsz // (4 + classes)
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 4 + classes, anchors])
    node = helper.make_node("Reshape", ["images", "shape"], ["output0"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, anchors])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class MemoryStore:
    """Applies batches in memory (the flush loop's work without a database)."""

    def __init__(self) -> None:
        self.batches = 0

    async def apply(self, batch: Batch) -> bool:
        self.batches += 1
        return True

    async def read(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    async def prune(self, *args: Any) -> None:
        return None


class OneModel(Predictor):
    """The real Predictor with its model already loaded (no database, no object storage)."""

    def __init__(self, entry: Loaded) -> None:
        super().__init__(None, Limits(20 << 20, 40_000_000), CoreScheduler(1, adaptive=False))  # type: ignore[arg-type]
        self._entry = entry

    async def loaded(self, caller: Principal, deployment_id: uuid.UUID) -> Loaded:
        return self._entry


class OpenAccess:
    """Lets every request through (the keys layer is not what this measures)."""

    def require_scope(self, principal: Principal, scope: str, deployment_id: uuid.UUID) -> None:
        return None

    async def admit(self, principal: Principal, deployment_id: uuid.UUID, images: int) -> Any:
        class Admitted:
            headers: dict[str, str] = {}

            async def release(self) -> None:
                return None

        return Admitted()


def app_for(predictor: Predictor, meter: Meter) -> FastAPI:
    extra = [OpenAccess()] if "access" in inspect.signature(build_predict_router).parameters else []
    app = FastAPI()
    app.include_router(build_predict_router(predictor, 16, 20 << 20, meter, *extra))

    @app.middleware("http")
    async def principal(request: Any, call_next: Any) -> Any:  # what AuthMiddleware puts there
        request.state.principal = Principal(PROJECT, TOKEN)
        return await call_next(request)

    return app


@asynccontextmanager
async def flushing(meter: Meter, every: float) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            await meter.flush()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(requests: int, imgsz: int) -> None:
    now = datetime.now(UTC)
    d = Deployment(uuid.uuid4(), PROJECT, "bench", uuid.uuid4(), "onnxruntime", now, now, Status.READY)
    d.model_meta = {"names": {"0": "a", "1": "b"}, "imgsz": imgsz}
    data = tiny_detector(imgsz)
    onnx.checker.check_model(onnx.load_from_string(data))
    predictor = OneModel(Loaded(d, OnnxModel(data, 1), len(data), 0.0))
    store = MemoryStore()
    on, off = Meter(store), Meter(store, enabled=False)
    image = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 140, 30)).save(image, "JPEG")
    body = image.getvalue()
    url = f"/api/v1/deployments/{d.id}/predict"
    times: dict[str, list[float]] = {"on": [], "off": []}
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(predictor, meter)), base_url="http://bench")
        for name, meter in (("on", on), ("off", off))
    }
    async with flushing(on, 0.5):
        for i in range(requests + 50):
            for name in ("on", "off") if i % 2 else ("off", "on"):  # alternate who goes first
                started = time.perf_counter()
                response = await clients[name].post(url, content=body, headers={"Content-Type": "image/jpeg"})
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.text
                if i >= 50:  # warm-up
                    times[name].append(elapsed)
    await on.flush()
    for client in clients.values():
        await client.aclose()
    predictor.close()

    calls = 200_000
    meter = Meter(MemoryStore())
    caller = Principal(PROJECT, TOKEN)
    started = time.perf_counter()
    for _ in range(calls):
        record_request(meter, caller, d.id, started, images=1, bytes_in=1000, compute_seconds=0.001)
    per_call_us = (time.perf_counter() - started) / calls * 1e6

    print(f"predict, {requests} requests each, one 640x480 JPEG, model imgsz {imgsz} (a reshape: worst case)")
    print(f"{'':>14} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name in ("off", "on"):
        t = times[name]
        print(f"{'metering ' + name:>14} {pct(t, 0.5):8.3f} {pct(t, 0.99):8.3f} {statistics.fmean(t):8.3f}")
    p50 = pct(times["on"], 0.5) / pct(times["off"], 0.5)
    p99 = pct(times["on"], 0.99) / pct(times["off"], 0.99)
    d50 = pct(times["on"], 0.5) - pct(times["off"], 0.5)
    d99 = pct(times["on"], 0.99) - pct(times["off"], 0.99)
    print(f"ratio on/off: p50 {p50:.3f}, p99 {p99:.3f}; difference: p50 {d50:+.3f} ms, p99 {d99:+.3f} ms")
    print(f"record_request alone: {per_call_us:.2f} us per call; flushes during the run: {store.batches}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--imgsz", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.imgsz))


if __name__ == "__main__":
    main()
