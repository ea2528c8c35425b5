"""Dependency health checks and the ``/health`` report of a service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class HealthCheck:
    """One dependency: `probe` raises (or times out) when it is not usable."""

    name: str
    probe: Callable[[], Awaitable[Any]]


async def _run(check: HealthCheck) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check.probe(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure of a probe means "down"; the reason is reported
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def health_report(service: str, version: str, checks: Sequence[HealthCheck]) -> dict[str, Any]:
    """Run every check concurrently; the service is ok only if all are."""
    results = await asyncio.gather(*(_run(c) for c in checks))
    by_name = {c.name: r for c, r in zip(checks, results, strict=True)}
    status = "ok" if all(r["status"] == "ok" for r in results) else "down"
    return {"service": service, "version": version, "status": status, "checks": by_name}
