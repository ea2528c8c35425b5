"""Composition of the runtimes beyond the in-process ones: Triton when configured, and the micro-batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vtp_inference.adapters.runtimes import ExternalRuntime
from vtp_inference.service_layer.batching import batching
from vtp_inference.settings import InferenceSettings
from vtp_runtime.health import HealthCheck
from vtp_runtime.service import ServiceRuntime


def use_runtimes(
    runtime: ServiceRuntime, settings: InferenceSettings
) -> tuple[dict[str, ExternalRuntime], Callable[[Any], Any] | None]:
    """External runtimes by name (with a health check each), and the model wrapper of the micro-batcher."""
    external: dict[str, ExternalRuntime] = {}
    if settings.triton_url:
        if not settings.triton_model_repository:
            raise ValueError("VTP_TRITON_URL needs VTP_TRITON_MODEL_REPOSITORY (the directory Triton loads from)")
        from vtp_inference.adapters.triton_runtime import TritonServer

        repository = Path(settings.triton_model_repository)
        repository.mkdir(parents=True, exist_ok=True)
        server = TritonServer(
            settings.triton_url,
            repository,
            settings.triton_backend,
            settings.threads_per_session(),
            settings.triton_timeout_seconds,
        )

        async def live() -> None:
            if not await asyncio.to_thread(server.live):
                raise ConnectionError(f"Triton at {settings.triton_url} is not live")

        runtime.checks.append(HealthCheck("triton", live))
        external["triton"] = server
    wrap = None
    if settings.micro_batch != "off":
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batch")
        delay = settings.micro_batch_max_delay_ms / 1000
        wrap = batching(settings.micro_batch, settings.micro_batch_max_size, delay, executor)

        async def stop_batches() -> None:
            executor.shutdown(wait=False, cancel_futures=True)

        runtime.parts.on_shutdown.append(stop_batches)
    return external, wrap
