"""``GET /api/v1/health``: every service's own health, gathered into one answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

TIMEOUT_SECONDS = 4.0


async def _one(client: httpx.AsyncClient, name: str, base_url: str) -> dict[str, Any]:
    try:
        response = await client.get(f"{base_url.rstrip('/')}/health", timeout=TIMEOUT_SECONDS)
        body: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300], "checks": {}}
    body.setdefault("status", "down" if response.status_code != 200 else "ok")
    return body


async def aggregate(client: httpx.AsyncClient, targets: Mapping[str, str]) -> dict[str, Any]:
    """Services and the dependencies they check, with one overall status."""
    names = list(targets)
    reports = await asyncio.gather(*(_one(client, n, targets[n]) for n in names))
    services = {n: r for n, r in zip(names, reports, strict=True)}
    dependencies: dict[str, dict[str, Any]] = {}
    for name, report in services.items():
        for dep, result in report.get("checks", {}).items():
            entry = dependencies.setdefault(dep, {"status": "ok", "checked_by": []})
            entry["checked_by"].append(name)
            if result.get("status") != "ok":
                entry["status"] = "down"
    ok = bool(services) and all(r.get("status") == "ok" for r in services.values())
    return {"status": "ok" if ok else "down", "services": services, "dependencies": dependencies}
