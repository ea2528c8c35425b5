"""Fixtures shared by every integration package, once per session: the short training job, its ONNX
export, a second project, and test photos (package-scoped copies would train and export once per package)."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.stack import LocalStack

from .datasets.conftest import upload
from .export.conftest import TRAIN_CONFIG, wait_export, wait_for
from .inference.conftest import _jpeg


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def other_project(stack: LocalStack, admin_token: str) -> dict[str, str]:
    """A bearer header of a token in a second project."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        project = api.post("/api/v1/projects", json={"name": f"other {uuid.uuid4().hex[:6]}"}).json()
        token = api.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "t"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def onnx_export(stack: LocalStack, admin_token: str, trained_job: dict[str, Any]) -> dict[str, Any]:
    """The job's ONNX export (the same one the export tests made, if they ran: content addressing)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        response = api.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": "onnx"})
        assert response.status_code in (200, 202), response.text
        export = wait_export(api, response.json()["id"])
    assert export["status"] == "succeeded", export["error"]
    return export


@pytest.fixture(scope="session")
def onnx_file(stack: LocalStack, admin_token: str, onnx_export: dict[str, Any], tmp_path_factory: Any) -> Path:
    """The export's model.onnx, for Ultralytics' own predict."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=60) as api:
        data = api.get(f"/api/v1/exports/{onnx_export['id']}/download").content
    root = tmp_path_factory.mktemp("onnx")
    zipfile.ZipFile(io.BytesIO(data)).extract("model.onnx", root)
    return root / "model.onnx"


@pytest.fixture(scope="session")
def photos(tmp_path_factory: Any) -> dict[str, Path]:
    """Images like the training data at several sizes and orientations (EXIF), PNG and JPEG."""
    root = tmp_path_factory.mktemp("photos")
    dataset = generate(root / "d", images=6, size=(96, 96), seed=11, tasks=("detection",), background_fraction=0.0)
    sources = sorted(p for p in dataset.rglob("*.jpg"))[:3]
    out: dict[str, Path] = {}
    variants = {
        "wide-1280x720.jpg": ((1280, 720), None),
        "vga-640x480.jpg": ((640, 480), None),
        "exif-rotated.jpg": ((320, 240), 6),
        "small-96.png": ((96, 96), None),
    }
    for i, (name, (size, orientation)) in enumerate(variants.items()):
        image = Image.open(sources[i % len(sources)]).convert("RGB").resize(size)
        path = root / name
        if name.endswith(".png"):
            image.save(path)
        else:
            path.write_bytes(_jpeg(image, orientation))
        out[name] = path
    return out
