"""Predictions: decode every image first (refusing the request if one is unusable), then run each.

Decoding, preprocessing, inference and postprocessing run in a thread pool, off the event loop,
as many at once as the core scheduler grants (service_layer/cores.py: every core to a job alone,
one each under concurrency). Each job runs in a copy of the request's context, so the runtime call
sees its trace (log lines, spans), and the runtime reads its grant there (adapters/granted_cores.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from vtp_inference.adapters.granted_cores import run_granted
from vtp_inference.adapters.model_cache import Loaded, ModelIntegrity
from vtp_inference.adapters.runtimes import ModelInvalid, RuntimeUnavailable
from vtp_inference.domain.model import Deployment, DeploymentNotFound, NotServing, Problem, RequestRefused, Status
from vtp_inference.domain.traffic import goes_to_canary
from vtp_inference.predict.detect import letterbox, nms
from vtp_inference.predict.images import ImageRejected, Limits, decode
from vtp_inference.service_layer import tasks
from vtp_inference.service_layer.commands import Deps, fail_on_load
from vtp_inference.service_layer.cores import CoreScheduler
from vtp_runtime import telemetry
from vtp_runtime.auth import Principal
from vtp_runtime.metrics import METRICS

T = TypeVar("T")

GRANTS = "vtp_inference_core_grants_total"
METRICS.declare(GRANTS, "counter", "Jobs (decode, inference) run in this replica, by the cores granted to each.")


@dataclass(frozen=True)
class Params:
    conf: float
    iou: float
    max_det: int
    classes: list[int] | None


def answering(entry: Loaded, version: str | None = None) -> Loaded:
    """The export that answers one request: the one of `version` when asked, else drawn by the canary's weight."""
    canary = entry.canary
    if canary is None:
        return entry
    if version is not None:
        own = version == str(entry.deployment.export_version)
        return canary if not own and version == str(canary.deployment.export_version) else entry
    return canary if goes_to_canary(entry.deployment) else entry


def served_versions(entry: Loaded) -> list[str]:
    """The export versions a deployment answers with (two during a traffic split)."""
    return [str(e.deployment.export_version) for e in (entry, entry.canary) if e is not None]


class Predictor:
    def __init__(self, deps: Deps, limits: Limits, cores: CoreScheduler) -> None:
        self._deps, self._limits, self._cores = deps, limits, cores
        self._pool = ThreadPoolExecutor(max_workers=cores.cores, thread_name_prefix="inference")
        self._names: dict[tuple[uuid.UUID, str], uuid.UUID] = {}  # (project, model name) -> deployment id

    async def loaded_by_name(
        self, caller: Principal, name: str, version: str | None = None, *, split: bool = True
    ) -> Loaded:
        """The caller's ready deployment called `name` (or with that id), as the OIP names models."""
        key = (caller.project_id, name)
        cached = self._names.get(key)
        if cached is not None:
            entry = await self.loaded(caller, cached, version, split=split)
            if name in (entry.deployment.name, str(entry.deployment.id)):
                return entry
            self._names.pop(key, None)  # renamed since: look the name up again
        async with self._deps.new_uow() as uow:
            found = await uow.repo.by_name(caller.project_id, name)
        if found is not None:
            deployment_id = found.id
        else:
            try:
                deployment_id = uuid.UUID(name)
            except ValueError as exc:
                raise DeploymentNotFound(name) from exc
        entry = await self.loaded(caller, deployment_id, version, split=split)
        self._names[key] = deployment_id
        return entry

    async def infer(self, entry: Loaded, tensor: np.ndarray) -> np.ndarray:
        """The model's raw output for a preprocessed tensor (the OIP's own interface)."""
        return await self._in_pool(entry.model, tensor, model=entry.model)

    async def _in_pool(self, function: Callable[..., T], *args: Any, model: object = None) -> T:
        """`function(*args)` in the pool once the scheduler grants it cores, in the request's context (its trace).

        A job that runs `model` needs every core unless the model adapts to its grant (`adaptive`).
        The cores are given back when the job ends in its thread, not when its caller stops waiting.
        """
        whole = model is not None and not getattr(model, "adaptive", False)
        cores = await self._cores.acquire(whole)
        METRICS.inc(GRANTS, cores=str(cores))
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # one per job: a context runs in one thread at a time
        try:
            job = self._pool.submit(context.run, run_granted, cores, function, *args)
        except BaseException:
            self._cores.release(cores)
            raise
        job.add_done_callback(lambda _: _call_soon(loop, self._cores.release, cores))
        return await asyncio.wrap_future(job)

    async def infer_timed(self, entry: Loaded, tensor: np.ndarray) -> tuple[np.ndarray, float]:
        """The raw output and the seconds the runtime took (not the wait for a worker): what usage meters."""

        def run() -> tuple[np.ndarray, float]:
            started, at = time.perf_counter(), telemetry.now_ns()
            output = entry.model(tensor)
            seconds = time.perf_counter() - started
            telemetry.stages(at, [("inference", seconds)])
            return output, seconds

        return await self._in_pool(run, model=entry.model)

    async def infer_outputs_timed(
        self, entry: Loaded, tensor: np.ndarray, names: list[str]
    ) -> tuple[list[tuple[str, np.ndarray]], float]:
        """The named outputs of a model with several (segment), and the seconds the runtime took."""

        def run() -> tuple[list[tuple[str, np.ndarray]], float]:
            started, at = time.perf_counter(), telemetry.now_ns()
            produced = tasks.all_outputs(entry.model, tensor)
            seconds = time.perf_counter() - started
            telemetry.stages(at, [("inference", seconds)])
            by_name = dict(zip([n for n, _ in tasks.model_outputs(entry.model)], produced, strict=False))
            return [(n, by_name[n]) for n in names], seconds

        return await self._in_pool(run, model=entry.model)

    async def loaded(
        self, caller: Principal, deployment_id: uuid.UUID, version: str | None = None, *, split: bool = True
    ) -> Loaded:
        """The caller's ready deployment with its model loaded (lazily, verified by sha256).

        With a traffic split, the export that answers this request (`answering`); `split=False`:
        the current export's entry, its canary in `.canary`.
        """

        async def read() -> Deployment:
            async with self._deps.new_uow() as uow:
                found = await uow.repo.get(caller.project_id, deployment_id)
            if found is None:
                raise DeploymentNotFound(str(deployment_id))
            if found.status != Status.READY:
                raise NotServing(f"the deployment is {found.status}")
            return found

        try:
            entry = await self._deps.cache.get(deployment_id, read)
        except RuntimeUnavailable:  # Triton unreachable: the model is not at fault
            raise
        except (ModelIntegrity, ModelInvalid) as exc:  # fails on every replica: the deployment fails, alone
            code = "MODEL_INTEGRITY" if isinstance(exc, ModelIntegrity) else exc.code
            await fail_on_load(self._deps, caller.project_id, deployment_id, code, str(exc))
            raise
        if entry.deployment.project_id != caller.project_id:
            raise DeploymentNotFound(str(deployment_id))
        return answering(entry, version) if split else entry

    async def predict(self, entry: Loaded, images: list[bytes], params: Params) -> list[dict[str, Any]]:
        decoded = await asyncio.gather(*(self._in_pool(self._decode, d) for d in images))
        problems = [
            Problem(f"/images/{i}", result.code, str(result))
            for i, (result, _) in enumerate(decoded)
            if isinstance(result, ImageRejected)
        ]
        if problems:
            raise RequestRefused(problems)
        jobs = [
            self._in_pool(self._run, entry, image, seconds, params, model=entry.model)
            for image, seconds in decoded
            if isinstance(image, np.ndarray)
        ]
        return [{"index": i, **result} for i, result in enumerate(await asyncio.gather(*jobs))]

    def _decode(self, data: bytes) -> tuple[np.ndarray | ImageRejected, float]:
        started, at = time.perf_counter(), telemetry.now_ns()
        try:
            image = decode(data, self._limits)
            seconds = time.perf_counter() - started
            telemetry.stages(at, [("decode", seconds)])
            return image, seconds
        except ImageRejected as exc:
            return exc, 0.0

    def _run(self, entry: Loaded, image: np.ndarray, decode_s: float, params: Params) -> dict[str, Any]:
        meta, at = entry.deployment.model_meta, telemetry.now_ns()
        if entry.deployment.task_type in tasks.TASKS:  # segment, pose, classify
            answer, seconds = tasks.predict(entry.deployment.task_type, entry.model, meta, image, params)
            telemetry.stages(at, list(seconds.items()))
            timings = {"decode": decode_s, **seconds}
            return {**answer, "timings_ms": {k: round(v * 1000, 3) for k, v in timings.items()}}
        names: dict[str, str] = meta["names"]
        t0 = time.perf_counter()
        boxed = letterbox(image, int(meta["imgsz"]))
        t1 = time.perf_counter()
        raw = entry.model(boxed.tensor)[0]
        t2 = time.perf_counter()
        rows = nms(raw, params.conf, params.iou, params.max_det, params.classes)
        h, w = image.shape[:2]
        detections = tasks.described(rows, boxed, (h, w), names)
        t3 = time.perf_counter()
        telemetry.stages(at, [("preprocess", t1 - t0), ("inference", t2 - t1), ("postprocess", t3 - t2)])
        timings = {"decode": decode_s, "preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2}
        return {
            "width": w,
            "height": h,
            "detections": detections,
            "timings_ms": {k: round(v * 1000, 3) for k, v in timings.items()},
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _call_soon(loop: asyncio.AbstractEventLoop, function: Callable[..., Any], *args: Any) -> None:
    """`function(*args)` on `loop`, from a pool thread; nothing once the loop has closed (shutdown)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(function, *args)
