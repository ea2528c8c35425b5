"""One short training job shared by every export test (1 epoch, 64 px), and helpers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.stack import LocalStack

from ..datasets.conftest import upload

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


@pytest.fixture(scope="package")
def trained_job(stack: LocalStack, admin_token: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("export-data")
    data = zip_dataset(generate(root / "d", images=24, size=(96, 96), seed=7), root / "d.zip").read_bytes()
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        response = upload(api, data, f"export-{uuid.uuid4().hex[:6]}")
        assert response.status_code == 201, response.text
        body = {
            "name": "export source",
            "task_type": "detect",
            "model": "yolo11n",
            "dataset_id": response.json()["id"],
            "config": TRAIN_CONFIG,
        }
        response = api.post("/api/v1/jobs", json=body)
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        job = wait_for(
            lambda: api.get(f"/api/v1/jobs/{job_id}").json(),
            lambda j: j["status"] in ("completed", "failed") and "best" in j["checkpoints"],
            600,
        )
        assert job["status"] == "completed", job["error"]
        return job


@pytest.fixture(scope="package")
def other_project(stack: LocalStack, admin_token: str) -> dict[str, str]:
    """A bearer header of a token in a second project."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        project = api.post("/api/v1/projects", json={"name": f"other {uuid.uuid4().hex[:6]}"}).json()
        token = api.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "t"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}
