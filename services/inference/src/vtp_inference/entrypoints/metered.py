"""What every serving entry point tells the meter about one answered request."""

from __future__ import annotations

import time
import uuid

from vtp_inference.service_layer.metering import Meter
from vtp_runtime.auth import Principal


def record_request(
    meter: Meter,
    caller: Principal,
    deployment_id: uuid.UUID,
    started: float,
    *,
    images: int,
    bytes_in: int,
    compute_seconds: float = 0.0,
    error: str | None = None,
) -> None:
    """Meter one request that began at `started` (perf_counter), under the caller's API key if it used one."""
    key_id = getattr(caller, "key_id", None)  # a key's principal (KeyPrincipal) carries it; a token's does not
    latency_ms = (time.perf_counter() - started) * 1000
    meter.record(
        caller.project_id,
        deployment_id,
        key_id if isinstance(key_id, uuid.UUID) else None,
        images=images,
        latency_ms=latency_ms,
        compute_seconds=compute_seconds,
        bytes_in=bytes_in,
        error=error,
    )


def declared_bytes(content_length: str | None) -> int:
    """A request's declared body size (0 without Content-Length: a chunked body)."""
    return int(content_length) if content_length and content_length.isdigit() else 0
