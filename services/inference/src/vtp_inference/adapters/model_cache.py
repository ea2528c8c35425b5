"""Loaded models of this replica: fetched from object storage, verified by sha256, kept under a budget.

Least recently used models are evicted when the sum of their file sizes exceeds the budget.
Deployment changes (events, or this replica's own commands) evict a deployment's entry, so
its next request loads what the database says now.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vtp_inference.adapters.runtimes import ExternalRuntime, Model, ModelInvalid, load, probe
from vtp_inference.domain.model import Deployment
from vtp_inference.domain.model_refs import runtime_key
from vtp_inference.domain.traffic import canary_view
from vtp_runtime.metrics import METRICS
from vtp_runtime.storage import ObjectStore

LOAD_SECONDS = "vtp_inference_model_load_seconds"
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
METRICS.declare(LOAD_SECONDS, "histogram", "Model loads: fetch, sha256 check and runtime session, seconds, by runtime.")
METRICS.declare("vtp_inference_model_cache_bytes", "gauge", "Bytes of model files this replica holds loaded.")
METRICS.declare("vtp_inference_model_cache_models", "gauge", "Deployments this replica holds loaded.")
METRICS.declare("vtp_inference_model_cache_budget_bytes", "gauge", "The replica's model cache budget (LRU beyond it).")


class ModelIntegrity(Exception):
    """The stored model's bytes are not those the deployment recorded."""


@dataclass
class Loaded:
    deployment: Deployment
    model: Model
    size: int
    load_seconds: float
    canary: Loaded | None = None  # a traffic split's second export, loaded with the first (evicted with it)


@dataclass
class CacheStats:
    loads: int = 0
    evictions: int = 0
    load_seconds: float = 0.0


async def _read(store: ObjectStore, ref: dict[str, Any], deployment: Deployment) -> bytes:
    data = b"".join([chunk async for chunk in store.open_stream(store.parse_uri(ref["uri"]))])
    if hashlib.sha256(data).hexdigest() != ref.get("sha256") or len(data) != ref.get("size_bytes"):
        raise ModelIntegrity(f"deployment {deployment.id}: a stored model file does not match its sha256")
    return data


async def read_verified(store: ObjectStore, deployment: Deployment) -> list[bytes]:
    """The deployment's model files (the model, then its weights if separate), each sha256-verified."""
    ref = deployment.model or {}
    files = [await _read(store, ref, deployment)]
    if ref.get("weights"):
        files.append(await _read(store, ref["weights"], deployment))
    return files


class ModelCache:
    def __init__(
        self,
        store: ObjectStore,
        budget_bytes: int,
        threads: int,
        external: Mapping[str, ExternalRuntime] | None = None,
        wrap: Callable[[Model], Model] | None = None,
        adaptive: bool = False,
    ) -> None:
        self._store, self._budget, self._threads = store, budget_bytes, threads
        self._adaptive = adaptive  # served models may hold a one-thread session too (service_layer/cores.py)
        self._external = dict(external or {})  # runtimes in another process (Triton), when configured
        self._wrap = wrap or (lambda model: model)  # e.g. the micro-batcher, when on
        self._entries: OrderedDict[uuid.UUID, Loaded] = OrderedDict()
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._generation: dict[uuid.UUID, int] = {}  # bumped by evict: a load that raced a change is not kept
        self.stats = CacheStats()
        self._gauges()

    def _gauges(self) -> None:
        METRICS.set("vtp_inference_model_cache_bytes", self.used_bytes())
        METRICS.set("vtp_inference_model_cache_models", len(self._entries))
        METRICS.set("vtp_inference_model_cache_budget_bytes", self._budget)

    async def get(self, deployment_id: uuid.UUID, read: Callable[[], Awaitable[Deployment]]) -> Loaded:
        """The loaded model; loads it (once, however many requests wait) when absent."""
        entry = self._entries.get(deployment_id)
        if entry is not None:
            self._entries.move_to_end(deployment_id)
            return entry
        lock = self._locks.setdefault(deployment_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(deployment_id)
            if entry is None:
                generation = self._generation.get(deployment_id, 0)
                entry = await self._load(await read())
                if generation == self._generation.get(deployment_id, 0):
                    self._entries[deployment_id] = entry
                    self._evict_over_budget()
                    self._gauges()
            return entry

    async def _load(self, deployment: Deployment) -> Loaded:
        started = time.perf_counter()
        files = await read_verified(self._store, deployment)
        key = runtime_key(deployment.id, deployment.model or {})  # the name its preparation loaded it under
        model = await asyncio.to_thread(
            load, deployment.runtime, files, self._threads, key, self._external, self._adaptive
        )
        sessions = getattr(model, "sessions", 1)  # an adaptive model's second session weighs as much
        model = self._wrap(model)
        seconds = time.perf_counter() - started
        self.stats.loads += 1
        METRICS.inc("vtp_inference_model_loads_total")
        METRICS.inc("vtp_inference_model_load_seconds_total", seconds)
        METRICS.observe(LOAD_SECONDS, seconds, LOAD_BUCKETS, runtime=deployment.runtime)
        self.stats.load_seconds += seconds
        loaded = Loaded(deployment, model, sessions * sum(len(f) for f in files), seconds)
        if deployment.canary:
            loaded.canary = await self._load(canary_view(deployment))
            loaded.size += loaded.canary.size
        return loaded

    def check(
        self,
        runtime: str,
        files: list[bytes],
        imgsz: int,
        classes: int,
        key: str = "",
        probe_with: Callable[[Model], None] | None = None,
    ) -> None:
        """Load and probe a model once, without caching it (deployment creation, switch).

        An external runtime keeps what it loaded under `key`: the deployment's first request finds it.
        `probe_with` checks another task's interface (segment, pose, classify) instead of detect's.
        """
        model = load(runtime, files, self._threads, key, self._external)
        probe_with(model) if probe_with is not None else probe(model, imgsz, classes)

    def available(self, runtime: str) -> bool:
        """Whether this replica can serve `runtime` (Triton only when a server is configured)."""
        return runtime in ("onnxruntime", "openvino") or runtime in self._external

    def external(self, runtime: str) -> bool:
        """Whether `runtime` holds its models in another process (Triton), where they must be released."""
        return runtime in self._external

    def release(self, runtime: str, key: str, model_sha256: str) -> None:
        """Drop a model an external runtime holds for `key` (stopped, deleted, switched away from)."""
        if runtime in self._external:
            self._external[runtime].release(key, model_sha256)

    def evict(self, deployment_id: uuid.UUID) -> None:
        self._generation[deployment_id] = self._generation.get(deployment_id, 0) + 1
        if self._entries.pop(deployment_id, None) is not None:
            self.stats.evictions += 1
            METRICS.inc("vtp_inference_model_evictions_total")
            self._gauges()

    def _evict_over_budget(self) -> None:
        while len(self._entries) > 1 and self.used_bytes() > self._budget:
            self._entries.popitem(last=False)
            self.stats.evictions += 1
            METRICS.inc("vtp_inference_model_evictions_total", reason="budget")

    def used_bytes(self) -> int:
        return sum(e.size for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["Loaded", "ModelCache", "ModelIntegrity", "ModelInvalid", "read_verified"]
