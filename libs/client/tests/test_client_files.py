"""Uploads report byte progress; downloads are streamed, sha256-checked and never left half written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from vtp_client import ApiError, Client

DATASET = {
    "id": "33333333-3333-3333-3333-333333333333",
    "name": "shapes",
    "head_version": 1,
    "content_hash": "ab",
    "image_count": 2,
    "size_bytes": 10,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


def test_an_upload_reports_every_byte_and_sends_name_and_file(tmp_path: Path) -> None:
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(b"PK" + bytes(300_000))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(201, json=DATASET)

    progress: list[tuple[int, int | None]] = []
    with Client("http://vtp.test", "t", http_transport=httpx.MockTransport(handler)) as vtp:
        dataset = vtp.datasets.upload(archive, "shapes", progress=lambda done, total: progress.append((done, total)))
    assert dataset.name == "shapes"
    assert progress[-1] == (300_002, 300_002) and len(progress) > 1  # in chunks, not one call at the end
    body = seen[0].content
    assert b'name="name"\r\n\r\nshapes' in body and b'filename="shapes.zip"' in body
    assert seen[0].headers["content-length"] == str(len(body))  # sized up front, not chunked


def test_a_download_is_checked_against_its_sha256(tmp_path: Path) -> None:
    payload = b"zip bytes" * 1000
    good = {"X-Content-SHA256": hashlib.sha256(payload).hexdigest()}
    headers = good | {"Content-Disposition": 'attachment; filename="../../export-v1-onnx.zip"'}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=payload, headers=headers)

    done: list[int] = []
    with Client("http://vtp.test", "t", http_transport=httpx.MockTransport(handler)) as vtp:
        path = vtp.exports.download("e1", tmp_path, progress=lambda n, total: done.append(n))
    assert path == tmp_path / "export-v1-onnx.zip"  # the server's name, never its directories
    assert path.read_bytes() == payload and done[-1] == len(payload)

    headers["X-Content-SHA256"] = "0" * 64
    vtp = Client("http://vtp.test", "t", http_transport=httpx.MockTransport(handler))
    with vtp, pytest.raises(ApiError) as caught:
        vtp.exports.download("e1", tmp_path / "other.zip")
    assert caught.value.code == "checksum_mismatch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export-v1-onnx.zip"]  # nothing half written


def test_predict_sends_every_image_as_a_file_part_and_parameters_in_the_query(tmp_path: Path) -> None:
    photo = tmp_path / "bus.jpg"
    photo.write_bytes(b"\xff\xd8jpeg")
    answer = {
        "deployment_id": DATASET["id"],
        "name": "d",
        "export_id": DATASET["id"],
        "task": "detect",
        "images": [
            {"index": 0, "width": 4, "height": 2, "detections": []},
            {
                "index": 1,
                "width": 4,
                "height": 2,
                "detections": [
                    {"class_id": 0, "class_name": "circle", "confidence": 0.9, "xyxy": [0, 0, 1, 1], "xywhn": [0] * 4}
                ],
            },
        ],
        "total_ms": 3.5,
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, content=json.dumps(answer).encode(), headers={"content-type": "application/json"})

    with Client("http://vtp.test", "t", http_transport=httpx.MockTransport(handler)) as vtp:
        result = vtp.deployments.predict("d1", [photo, b"\x89PNG raw"], conf=0.5, classes=[0, 2])
    assert result.images[1].detections[0].class_name == "circle"
    request = seen[0]
    assert dict(request.url.params) == {"conf": "0.5", "classes": "0,2"}
    assert request.content.count(b'name="file"') == 2
    assert b'filename="bus.jpg"\r\nContent-Type: image/jpeg' in request.content
