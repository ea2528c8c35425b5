"""Settings of the inference service (environment, prefix ``VTP_``)."""

import os
from typing import Literal

from pydantic import Field, model_validator

from vtp_runtime.settings import ServiceSettings


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class InferenceSettings(ServiceSettings):
    service_name: str = "inference"
    http_port: int = 8106
    export_url: str = Field("http://127.0.0.1:8105", description="The export service (export packages, over REST).")
    datasets_url: str = Field("http://127.0.0.1:8103", description="The datasets service (batch snapshots, REST).")
    model_cache_bytes: int = Field(2 << 30, ge=1, description="Memory budget of loaded models (LRU beyond it).")
    # The cores jobs get (service_layer/cores.py); never more than the replica's cores at once.
    inference_threading: Literal["adaptive", "fixed"] = Field(
        "adaptive",
        description="adaptive: an image alone runs on every core, images at once on one core each (ONNX Runtime on "
        "CPU); fixed: VTP_INFERENCE_WORKERS jobs at once of VTP_INFERENCE_THREADS threads each.",
    )
    inference_workers: int = Field(1, ge=1, description="fixed threading: inferences that run at once in this replica.")
    inference_threads: int = Field(
        0, ge=0, description="fixed threading: intra-op threads per session; 0: cores/workers."
    )
    max_images: int = Field(16, ge=1, description="Images per predict request.")
    max_image_bytes: int = Field(20 << 20, ge=1, description="Encoded bytes per image.")
    max_image_pixels: int = Field(40_000_000, ge=1, description="Decoded pixels per image (decompression bombs).")
    max_package_bytes: int = Field(2 << 30, ge=1, description="An export package larger than this is refused.")
    creating_timeout_seconds: float = Field(600.0, gt=0, description="A deployment still creating after this failed.")
    # The orphan sweep (service_layer/sweeping.py): model files and Triton models no live deployment references.
    orphan_sweep_seconds: float = Field(900.0, gt=0, description="How often each replica looks for orphan models.")
    orphan_grace_seconds: float = Field(
        3600.0, ge=60, description="An orphan younger than this is kept (a preparation in flight stores files first)."
    )
    # The triton runtime (adapters/triton_runtime.py): offered only when a Triton server is configured.
    triton_url: str = Field("", description="Triton's HTTP endpoint (host:port); empty: runtime triton is refused.")
    triton_model_repository: str = Field("", description="The directory Triton loads from (--model-repository).")
    triton_backend: Literal["python", "onnxruntime"] = Field(
        "python", description="python: ONNX Runtime inside Triton's Python backend (CPU builds); onnxruntime: native."
    )
    triton_timeout_seconds: float = Field(120.0, gt=0, description="Triton calls (a model load included).")
    # The micro-batcher (service_layer/batching.py): auto = on for accelerator runtimes (CUDA) only.
    micro_batch: Literal["auto", "on", "off"] = Field("auto", description="Batch concurrent images per model.")
    micro_batch_max_size: int = Field(8, ge=1, description="Images in one batch at most.")
    micro_batch_max_delay_ms: float = Field(2.0, ge=0, description="How long a batch waits to fill up.")
    # API keys and rate limits (service_layer/access.py).
    key_cache_seconds: float = Field(30.0, gt=0, description="A verified API key is trusted this long per replica.")
    rate_limit_fail_mode: Literal["open", "closed"] = Field(
        "open", description="Redis unreachable: open serves (logged, counted), closed answers 503."
    )
    rate_limit_redis_url: str | None = Field(None, description="Redis of the rate limits; default VTP_REDIS_URL.")
    rate_limit_timeout_seconds: float = Field(1.0, gt=0, description="A rate limit check slower than this fails.")
    concurrency_lease_seconds: float = Field(300.0, gt=0, description="A dead replica's concurrent slot ends after.")
    key_last_used_flush_seconds: float = Field(5.0, gt=0, description="Keys' last use is written this often.")
    usage_enabled: bool = Field(True, description="Meter predict and OIP requests (usage API); off: nothing recorded.")
    usage_flush_seconds: float = Field(5.0, gt=0, description="Usage aggregated in memory is written this often.")
    usage_minute_retention_days: int = Field(30, ge=1, description="Per-minute usage kept (hours and days: always).")
    grpc_port: int = Field(8001, ge=0, le=65535, description="Open Inference Protocol over gRPC; 0: no gRPC server.")
    grpc_max_message_bytes: int = Field(64 << 20, ge=4 << 20, description="Largest gRPC request (input tensors).")
    # Batch inference (service_layer/batch_run.py): every replica is a member of the `batchers` group.
    batch_slots: int = Field(1, ge=0, description="Batches this replica runs at once; 0: it takes none.")
    batch_chunk_size: int = Field(64, ge=1, le=10_000, description="Images per stored chunk of results.")
    batch_max_images: int = Field(100_000, ge=1, description="Images in one batch at most.")
    batch_max_upload_bytes: int = Field(4 << 30, ge=1, description="Largest zip a batch accepts.")
    batch_lease_seconds: float = Field(60.0, gt=0, description="A batch whose worker is silent this long is resumed.")
    batch_heartbeat_seconds: float = Field(10.0, gt=0, description="How often a worker renews its batch's lease.")
    batch_watchdog_seconds: float = Field(15.0, gt=0, description="How often expired batch leases are looked for.")
    batch_max_attempts: int = Field(5, ge=1, description="Workers lost on one batch before it fails.")

    @model_validator(mode="after")
    def _threading_knobs(self) -> "InferenceSettings":
        if self.inference_threading == "adaptive" and (self.inference_workers != 1 or self.inference_threads):
            raise ValueError("VTP_INFERENCE_WORKERS and VTP_INFERENCE_THREADS need VTP_INFERENCE_THREADING=fixed")
        return self

    def threads_per_session(self) -> int:
        """Intra-op threads of a session (adaptive: the wide one; its narrow one has one)."""
        return self.inference_threads or max(1, _cores() // self.inference_workers)

    def concurrent_jobs(self) -> int:
        """The core scheduler's cores: the replica's (adaptive) or its workers (fixed)."""
        return _cores() if self.inference_threading == "adaptive" else self.inference_workers
