"""One short training job shared by every export test (1 epoch, 64 px), and helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

TRAIN_CONFIG = {"epochs": 1, "imgsz": 64, "batch": 8, "workers": 0, "seed": 0}


def wait_for(
    get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"timed out waiting; last state {value}"
        time.sleep(0.5)


def wait_export(api: httpx.Client, export_id: str, timeout: float = 600) -> dict[str, Any]:
    return wait_for(
        lambda: api.get(f"/api/v1/exports/{export_id}").json(),
        lambda e: e["status"] in ("succeeded", "failed"),
        timeout,
    )
