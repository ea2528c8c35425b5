"""The export tests' short training job (shared, not copied), one ONNX export of it, a second one, and test images."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from vtp_localstack.stack import LocalStack

from ..export.conftest import wait_export


def _jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    exif = image.getexif()
    if orientation:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


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


def scrape_metrics(stack: LocalStack, admin_token: str) -> list[str]:
    """Every inference replica's /metrics (each counts its own; the gateway may balance several)."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    return [
        httpx.get(f"http://{stack.cfg.host}:{port}/metrics", headers=auth, timeout=30).text
        for port in stack.cfg.replica_ports("inference")
    ]


def metric_value(texts: list[str], series: str, default: float | None = None) -> float:
    """The series summed over the replicas that have it; `default` when none has it (else it must exist)."""
    found = [re.search(rf"^{re.escape(series)} (\S+)$", t, re.MULTILINE) for t in texts]
    values = [float(m.group(1)) for m in found if m is not None]
    if not values and default is not None:
        return default
    assert values, f"{series} missing"
    return sum(values)


@pytest.fixture(scope="session")
def second_export(stack: LocalStack, admin_token: str, trained_job: dict[str, Any]) -> dict[str, Any]:
    """Another ONNX export of the same checkpoint (unsimplified graph: other content, same predictions)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    body = {"job_id": trained_job["id"], "format": "onnx", "options": {"simplify": False}}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        response = api.post("/api/v1/exports", json=body)
        assert response.status_code in (200, 202), response.text
        export = wait_export(api, response.json()["id"])
    assert export["status"] == "succeeded", export["error"]
    return export
