"""``GET /api/v1/health``: every service's own health, gathered into one answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

TIMEOUT_SECONDS = 4.0
# Checks of a service's own machinery (supervised tasks, Kafka subscribers): they stay in that
# service's report, since they are not shared dependencies like PostgreSQL or Kafka.
INTERNAL_CHECKS = frozenset({"background", "consumers"})


async def _one(client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]) -> dict[str, Any]:
    try:
        response = await client.get(f"{base_url.rstrip('/')}/health", headers=headers, timeout=TIMEOUT_SECONDS)
        body: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300], "checks": {}}
    body.setdefault("status", "down" if response.status_code != 200 else "ok")
    return body


async def aggregate(
    client: httpx.AsyncClient, targets: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Services and the dependencies they check, with one overall status.

    `headers` go to every service: an admin's bearer token gets each one's detail.
    """
    names = list(targets)
    reports = await asyncio.gather(*(_one(client, targets[n], headers or {}) for n in names))
    services = {n: r for n, r in zip(names, reports, strict=True)}
    dependencies: dict[str, dict[str, Any]] = {}
    for name, report in services.items():
        for dep, result in report.get("checks", {}).items():
            if dep in INTERNAL_CHECKS:
                continue
            entry = dependencies.setdefault(dep, {"status": "ok", "checked_by": []})
            entry["checked_by"].append(name)
            if result.get("status") != "ok":
                entry["status"] = "down"
    ok = bool(services) and all(r.get("status") == "ok" for r in services.values())
    return {"status": "ok" if ok else "down", "services": services, "dependencies": dependencies}
