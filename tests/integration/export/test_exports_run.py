"""Real exports of a trained job: every default CPU format with its parity report, the package and its
predictor, content addressing, the parity gate stopping a corrupted export, and an exporter child
SIGKILLed mid-export."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer

from vtp_localstack.stack import LocalStack

from .conftest import wait_export, wait_for

pytestmark = pytest.mark.integration
FORMATS = ("onnx", "torchscript", "openvino", "ncnn")
MODEL_FILES = {
    "onnx": "model.onnx",
    "torchscript": "model.torchscript",
    "openvino": "model_openvino/",
    "ncnn": "model_ncnn/",
}


@pytest.fixture(scope="module")
def exports(admin_token: str, stack: LocalStack, trained_job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One export per default format of the session's job, all requested at once, each waited for."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:
        queued = {}
        for fmt in FORMATS:
            response = api.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": fmt})
            # 200: the session's ONNX export of this job may exist already (content addressing)
            assert response.status_code in (200, 202), response.text
            assert response.status_code == 200 or response.json()["status"] == "queued"
            queued[fmt] = response.json()
        return {fmt: wait_export(api, e["id"]) for fmt, e in queued.items()}


def _download(api: httpx.Client, export: dict[str, Any]) -> zipfile.ZipFile:
    with api.stream("GET", f"/api/v1/exports/{export['id']}/download") as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/zip"
        data = b"".join(response.iter_bytes())
    assert hashlib.sha256(data).hexdigest() == export["artifact"]["sha256"]
    assert len(data) == export["artifact"]["size_bytes"]
    return zipfile.ZipFile(io.BytesIO(data))


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_format_succeeds_with_parity_report(admin: httpx.Client, exports: dict[str, Any], fmt: str):
    export = exports[fmt]
    assert export["status"] == "succeeded", export["error"]
    parity = export["parity"]
    assert parity["passed"] and parity["failures"] == [] and parity["precision"] == "fp32"
    assert parity["raw"]["images"] > 0 and parity["raw"]["max_abs_diff"] < 0.05
    assert parity["metric"]["name"] == "mAP50-95" and abs(parity["metric"]["delta"]) <= 0.01
    assert parity["predictor"]["mismatched"] == 0
    assert export["metadata"]["input"]["imgsz"] == 64 and export["metadata"]["task"] == "detect"
    names = set(_download(admin, export).namelist())
    assert {"metadata.json", "predict.py", "README.md", "samples/expected.json"} <= names
    assert any(n.startswith(MODEL_FILES[fmt]) for n in names)
    if fmt == "onnx":
        assert {"triton/model/config.pbtxt", "triton/model/1/model.onnx"} <= names


def test_versions_and_default(admin: httpx.Client, exports: dict[str, Any], trained_job: dict[str, Any]):
    listed = admin.get("/api/v1/exports", params={"job_id": trained_job["id"], "status": "succeeded"}).json()["items"]
    versions = sorted(e["version"] for e in listed)
    assert len(versions) == len(set(versions)) >= len(FORMATS)
    defaults = [e for e in listed if e["is_default"]]
    assert len(defaults) == 1
    other = next(e for e in listed if not e["is_default"])
    assert admin.post(f"/api/v1/exports/{other['id']}/default").json()["is_default"]
    only = admin.get("/api/v1/exports", params={"job_id": trained_job["id"], "default": True}).json()["items"]
    assert [e["id"] for e in only] == [other["id"]]
    assert admin.get("/api/v1/exports", params={"format": "ncnn", "job_id": trained_job["id"]}).json()["total"] >= 1


def test_same_request_twice_is_one_export(admin: httpx.Client, exports: dict[str, Any], trained_job: dict[str, Any]):
    again = admin.post(
        "/api/v1/exports", json={"job_id": trained_job["id"], "format": "onnx", "options": {"simplify": True}}
    )
    assert again.status_code == 200 and again.json()["id"] == exports["onnx"]["id"]
    explicit = {"imgsz": 64, "batch": 1, "dynamic": False}
    same = admin.post(
        "/api/v1/exports",
        json={"job_id": trained_job["id"], "checkpoint": "best", "format": "torchscript", "options": explicit},
    )
    assert same.status_code == 200 and same.json()["id"] == exports["torchscript"]["id"]


def test_concurrent_same_requests_make_one_export(admin: httpx.Client, trained_job: dict[str, Any]):
    body = {"job_id": trained_job["id"], "format": "openvino", "options": {"imgsz": 96}}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: admin.post("/api/v1/exports", json=body), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 202]
    assert len({a.json()["id"] for a in answers}) == 1
    # Deleting it stops it wherever it is (queued, or running under a worker's lease).
    assert admin.delete(f"/api/v1/exports/{answers[0].json()['id']}").status_code == 204
    assert admin.post("/api/v1/exports", json=body).status_code == 202  # gone: a new export
    listed = admin.get("/api/v1/exports", params={"job_id": trained_job["id"], "format": "openvino"}).json()["items"]
    for export in listed:
        if export["options"]["imgsz"] == 96:
            admin.delete(f"/api/v1/exports/{export['id']}")


def test_package_predictor_reproduces_the_platform(admin: httpx.Client, exports: dict[str, Any], tmp_path: Path):
    _download(admin, exports["onnx"]).extractall(tmp_path)
    expected = json.loads((tmp_path / "samples" / "expected.json").read_text())
    images = sorted(str(p) for p in (tmp_path / "samples").glob("*") if p.suffix != ".json")
    assert images
    out = subprocess.run(
        [
            sys.executable,
            "predict.py",
            *images,
            "--json",
            "--conf",
            str(expected["conf"]),
            "--iou",
            str(expected["iou"]),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    got = json.loads(out.stdout)
    assert set(got) == set(expected["detections"])
    for name, want in expected["detections"].items():
        assert len(got[name]) == len(want), name
        for g, w in zip(got[name], want, strict=True):
            assert g["class"] == w["class"] and abs(g["score"] - w["score"]) < 1e-4
            assert max(abs(a - b) for a, b in zip(g["box"], w["box"], strict=True)) < 1e-2


def test_corrupted_export_fails_the_parity_gate(
    admin: httpx.Client, exports: dict[str, Any], trained_job: dict[str, Any]
):
    body = {"job_id": trained_job["id"], "format": "onnx", "options": {"debug_perturb": 5.0}}
    response = admin.post("/api/v1/exports", json=body)
    assert response.status_code == 202, response.text
    export = wait_export(admin, response.json()["id"])
    assert export["status"] == "failed" and export["error"]["code"] == "PARITY_FAILED"
    assert not export["parity"]["passed"] and export["parity"]["failures"]
    assert export["parity"]["raw"]["max_box_diff_px"] >= 4.9 and export["artifact"] is None
    assert admin.get(f"/api/v1/exports/{export['id']}/download").json()["code"] == "export_not_ready"


def _child_of(export_id: str) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "vtp_export.child.main" in cmdline and any(export_id in part for part in cmdline):
            return proc
    return None


def _completions(stack: LocalStack, export_id: str, topic: str = "export.completed.v1") -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=stack.cfg.kafka_bootstrap,
            group_id=f"t-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=3000, max_records=100000)
        finally:
            await consumer.stop()
        records = [json.loads(r.value) for rs in batches.values() for r in rs]
        return [r for r in records if r["export_id"] == export_id]

    return asyncio.run(read())


def test_sigkilled_exporter_child_is_requeued_and_succeeds_once(
    admin: httpx.Client, stack: LocalStack, exports: dict[str, Any], trained_job: dict[str, Any]
):
    body = {"job_id": trained_job["id"], "format": "onnx", "options": {"opset": 17}}
    export_id = admin.post("/api/v1/exports", json=body).json()["id"]
    child = wait_for(lambda: {"p": _child_of(export_id)}, lambda d: d["p"] is not None, 300)["p"]
    os.kill(child.pid, signal.SIGKILL)
    export = wait_export(admin, export_id)
    assert export["status"] == "succeeded", export["error"]
    assert export["attempt"] == 2
    done = wait_for(lambda: {"c": _completions(stack, export_id)}, lambda d: len(d["c"]) >= 1, 60)["c"]
    assert [c["status"] for c in done] == ["succeeded"] and done[0]["attempt"] == 2


def test_another_project_cannot_see(gateway: httpx.Client, exports: dict[str, Any], other_project: dict[str, str]):
    assert gateway.get("/api/v1/exports", headers=other_project).json()["total"] == 0
    export = exports["onnx"]
    for path in ("", "/download"):
        response = gateway.get(f"/api/v1/exports/{export['id']}{path}", headers=other_project)
        assert response.status_code == 404 and response.json()["code"] == "export_not_found"
    assert gateway.delete(f"/api/v1/exports/{export['id']}", headers=other_project).status_code == 404
    assert gateway.post(f"/api/v1/exports/{export['id']}/default", headers=other_project).status_code == 404


def test_delete_then_request_again_is_a_new_version(
    admin: httpx.Client, exports: dict[str, Any], trained_job: dict[str, Any]
):
    ncnn = exports["ncnn"]
    assert admin.delete(f"/api/v1/exports/{ncnn['id']}").status_code == 204
    assert admin.get(f"/api/v1/exports/{ncnn['id']}").status_code == 404
    again = admin.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": "ncnn"})
    assert again.status_code == 202 and again.json()["id"] != ncnn["id"]
    assert again.json()["version"] > max(e["version"] for e in exports.values())
    assert admin.delete(f"/api/v1/exports/{again.json()['id']}").status_code == 204  # stops its worker too


def test_progress_stages_are_published_in_order(stack: LocalStack, exports: dict[str, Any]):
    export_id = exports["onnx"]["id"]
    progress = _completions(stack, export_id, "export.progress.v1")
    assert [p["stage"] for p in progress] == ["exporting", "validating", "packaging"]
    assert {p["attempt"] for p in progress} == {1}


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_export_service_killed_mid_export_is_requeued_after_its_lease(
    admin: httpx.Client, stack: LocalStack, exports: dict[str, Any], trained_job: dict[str, Any]
):
    """The worker dies with its process: its lease expires, the watchdog requeues, the child goes too."""
    body = {"job_id": trained_job["id"], "format": "torchscript", "options": {"imgsz": 96}}
    export_id = admin.post("/api/v1/exports", json=body).json()["id"]
    child = wait_for(lambda: {"p": _child_of(export_id)}, lambda d: d["p"] is not None, 300)["p"]
    service = stack.table.find("export")
    assert service is not None
    service.kill()
    wait_for(lambda: {"gone": _gone(child)}, lambda d: d["gone"], 30)  # the orphaned child exits by itself
    stack.up()  # restarts the killed service, as the local stack's supervisor would
    export = wait_export(admin, export_id)
    assert export["status"] == "succeeded", export["error"]
    assert export["attempt"] == 2
    done = wait_for(lambda: {"c": _completions(stack, export_id)}, lambda d: len(d["c"]) >= 1, 60)["c"]
    assert [c["status"] for c in done] == ["succeeded"]
