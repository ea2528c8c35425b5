"""Three tiny jobs (segment, pose, classify; 1 epoch, 64 px) on one generated dataset, their ONNX and OpenVINO exports.

Shared by the export and predict tests of this package; the helpers and the test photos come from
the export and inference packages (not copied).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.stack import LocalStack

from ..datasets.conftest import upload
from ..export.conftest import TRAIN_CONFIG, wait_export, wait_for

TASKS = ("segment", "pose", "classify")
ALL_ANNOTATIONS = ("detection", "segmentation", "classification", "pose")


@pytest.fixture(scope="package")
def task_jobs(stack: LocalStack, admin_token: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """task -> its completed job; the three train at once on one dataset carrying every task's annotations."""
    root = tmp_path_factory.mktemp("tasks-data")
    dataset = generate(root / "d", images=32, size=(96, 96), seed=5, tasks=ALL_ANNOTATIONS, background_fraction=0)
    data = zip_dataset(dataset, root / "d.zip").read_bytes()
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        response = upload(api, data, f"tasks-{uuid.uuid4().hex[:6]}")
        assert response.status_code == 201, response.text
        dataset_id = response.json()["id"]
        created = {}
        for task in TASKS:
            body = {
                "name": f"{task} source",
                "task_type": task,
                "model": "yolo11n",
                "dataset_id": dataset_id,
                "config": TRAIN_CONFIG,
            }
            response = api.post("/api/v1/jobs", json=body)
            assert response.status_code == 201, response.text
            created[task] = response.json()["id"]
        jobs = {}
        for task, job_id in created.items():
            jobs[task] = wait_for(
                lambda job_id=job_id: api.get(f"/api/v1/jobs/{job_id}").json(),
                lambda j: j["status"] == "failed" or (j["status"] == "completed" and "best" in j["checkpoints"]),
                900,
            )
            assert jobs[task]["status"] == "completed", (task, jobs[task]["error"])
        return jobs


@pytest.fixture(scope="package")
def task_exports(stack: LocalStack, admin_token: str, task_jobs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """task -> the job's ONNX export (default options), requested together, each waited for."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        queued = {}
        for task, job in task_jobs.items():
            response = api.post("/api/v1/exports", json={"job_id": job["id"], "format": "onnx"})
            assert response.status_code in (200, 202), response.text
            queued[task] = response.json()["id"]
        return {task: wait_export(api, export_id, timeout=900) for task, export_id in queued.items()}


@pytest.fixture(scope="package")
def task_openvino_exports(stack: LocalStack, admin_token: str, task_jobs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """task -> the job's OpenVINO export (default options), requested together, each waited for."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        queued = {}
        for task, job in task_jobs.items():
            response = api.post("/api/v1/exports", json={"job_id": job["id"], "format": "openvino"})
            assert response.status_code in (200, 202), response.text
            queued[task] = response.json()["id"]
        return {task: wait_export(api, export_id, timeout=900) for task, export_id in queued.items()}


@pytest.fixture(scope="package")
def deployments(
    stack: LocalStack, admin_token: str, task_exports: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """task -> a ready deployment of its ONNX export (ONNX Runtime)."""
    found = {}
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as admin:
        for task in TASKS:
            name = f"{task}-{task_exports[task]['id'][:8]}"
            body = {"export_id": task_exports[task]["id"], "name": name}
            response = admin.post("/api/v1/deployments", json=body)
            assert response.status_code == 201 and response.json()["status"] == "ready", response.text
            assert response.json()["task_type"] == task
            found[task] = response.json()
    return found
