"""The platform steps the benches share, through the public REST API: upload generated sample data,
train a short detect job, export it, deploy it; and keep a failed run's logs.

Each bench starts its own local stack (`vtp_localstack`) and calls these with a client on its gateway.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def wait(api: httpx.Client, path: str, done: Callable[[dict[str, Any]], bool], timeout: float = 3600) -> dict:
    """GET `path` every 0.5 s until `done(body)`; the body."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.get(path).json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {body}")
        time.sleep(0.5)


def train_detect(
    api: httpx.Client,
    root: Path,
    *,
    images: int,
    epochs: int,
    imgsz: int,
    size: tuple[int, int] = (160, 128),
    seed: int = 3,
    batch: int = 16,
) -> dict[str, Any]:
    """A yolo11n detect job on `images` generated sample images (each `size`), completed; the job."""
    from vtp_dice.sample import generate, zip_dataset

    data = zip_dataset(generate(root / "d", images=images, size=size, seed=seed), root / "d.zip").read_bytes()
    files = {"file": ("d.zip", data, "application/zip")}
    dataset = api.post("/api/v1/datasets", data={"name": f"bench-{uuid.uuid4().hex[:6]}"}, files=files, timeout=300)
    dataset.raise_for_status()
    config = {"epochs": epochs, "imgsz": imgsz, "batch": batch, "workers": 0, "seed": 0}
    body = {"name": "bench", "task_type": "detect", "model": "yolo11n", "dataset_id": dataset.json()["id"]}
    job = api.post("/api/v1/jobs", json={**body, "config": config})
    job.raise_for_status()
    done = wait(api, f"/api/v1/jobs/{job.json()['id']}", lambda j: j["status"] in ("completed", "failed"))
    if done["status"] != "completed":
        raise RuntimeError(f"training failed: {done['error']}")
    return done


def export(api: httpx.Client, job_id: str, fmt: str = "onnx", options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's export in `fmt`, finished (succeeded or failed: the caller decides)."""
    created = api.post("/api/v1/exports", json={"job_id": job_id, "format": fmt, "options": options or {}})
    created.raise_for_status()
    return wait(api, f"/api/v1/exports/{created.json()['id']}", lambda e: e["status"] in ("succeeded", "failed"))


def deploy(api: httpx.Client, export_id: str, name: str) -> dict[str, Any]:
    """A deployment of the export, polled every 20 ms until ready; refused or failed: RuntimeError."""
    created = api.post("/api/v1/deployments", json={"export_id": export_id, "name": name}, timeout=300)
    if created.is_error:
        raise RuntimeError(f"deployment refused: {created.status_code} {created.text}")
    path = f"/api/v1/deployments/{created.json()['id']}"
    while (body := api.get(path).json())["status"] not in ("ready", "failed"):
        time.sleep(0.02)
    if body["status"] != "ready":
        raise RuntimeError(f"deployment failed: {body}")
    return dict(body)


def keep_logs(run_dir: Path, bench: str) -> None:
    """Copy a failed run's stack logs out of its (temporary) run directory before it goes."""
    kept = Path(tempfile.gettempdir()) / f"{bench}-logs-{uuid.uuid4().hex[:6]}"
    shutil.copytree(run_dir / "logs", kept, dirs_exist_ok=True)
    print(f"the stack's logs are kept in {kept}")
