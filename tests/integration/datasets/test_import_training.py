"""An imported YOLO dataset and an imported COCO dataset each train a short job to completion."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from vtp_dice.sample_foreign import coco_zip, yolo_zip

pytestmark = pytest.mark.integration
CONFIG = {"epochs": 1, "imgsz": 32, "batch": 4, "workers": 0, "seed": 0}
SIZES = {"train": 8, "val": 4}


def _train(admin: httpx.Client, data: bytes, fmt: str) -> dict:
    fields = {"name": f"import-train-{uuid.uuid4().hex[:6]}", "format": fmt}
    created = admin.post(
        "/api/v1/datasets", data=fields, files={"file": ("d.zip", data, "application/zip")}, timeout=120
    )
    assert created.status_code == 201, created.text
    body = {
        "name": "t",
        "task_type": "detect",
        "model": "yolo11n",
        "dataset_id": created.json()["id"],
        "config": CONFIG,
    }
    job = admin.post("/api/v1/jobs", json=body)
    assert job.status_code == 201, job.text
    return job.json()


def _finished(admin: httpx.Client, job_id: str, timeout: float = 400) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = admin.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.5)


def test_imported_yolo_and_coco_datasets_train(admin: httpx.Client) -> None:
    jobs = [_train(admin, yolo_zip("detection", SIZES), "yolo"), _train(admin, coco_zip("detection", SIZES)[0], "auto")]
    for job in jobs:
        done = _finished(admin, job["id"])
        assert done["status"] == "completed", done["error"]
        assert done["checkpoints"]["last"]["uri"] and done["best_metrics"]
