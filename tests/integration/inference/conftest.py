"""The export tests' short training job (shared, not copied), one ONNX export of it, and test images."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from vtp_dice.sample import generate
from vtp_localstack.stack import LocalStack

from ..export.conftest import other_project, trained_job, wait_export  # noqa: F401  (fixtures shared)


@pytest.fixture(scope="package")
def onnx_export(stack: LocalStack, admin_token: str, trained_job: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """The job's ONNX export (the same one the export tests made, if they ran: content addressing)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        response = api.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": "onnx"})
        assert response.status_code in (200, 202), response.text
        export = wait_export(api, response.json()["id"])
    assert export["status"] == "succeeded", export["error"]
    return export


@pytest.fixture(scope="package")
def onnx_file(stack: LocalStack, admin_token: str, onnx_export: dict[str, Any], tmp_path_factory: Any) -> Path:
    """The export's model.onnx, for Ultralytics' own predict."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=60) as api:
        data = api.get(f"/api/v1/exports/{onnx_export['id']}/download").content
    root = tmp_path_factory.mktemp("onnx")
    zipfile.ZipFile(io.BytesIO(data)).extract("model.onnx", root)
    return root / "model.onnx"


def _jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    exif = image.getexif()
    if orientation:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture(scope="package")
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


def bomb_png() -> bytes:
    """A small file that decodes to 10000 x 10000 pixels."""
    out = io.BytesIO()
    Image.fromarray(np.zeros((10000, 10000), dtype=bool)).save(out, "PNG")
    return out.getvalue()


def oip_tensor(photo: Path, imgsz: int = 64) -> np.ndarray:
    """The documented preprocessing: square letterbox (grey 114), RGB, /255, NCHW float32."""
    import cv2

    image = cv2.imread(str(photo))
    h, w = image.shape[:2]
    r = min(imgsz / h, imgsz / w)
    nw, nh = round(w * r), round(h * r)
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (imgsz - nw) / 2, (imgsz - nh) / 2
    image = cv2.copyMakeBorder(image, round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1),
                               cv2.BORDER_CONSTANT, value=(114, 114, 114))  # fmt: skip
    return np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
