"""The exports API's rules through the gateway: capabilities, every refusal with its code, project scoping."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration
DEFAULT_FORMATS = ("onnx", "torchscript", "openvino", "ncnn")


def _problems(response: httpx.Response) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {(e["pointer"], e["code"]) for e in response.json()["errors"]}


def test_capabilities_report_what_is_installed(admin: httpx.Client):
    body = admin.get("/api/v1/exports/capabilities").json()
    tasks = {t["task"]: t for t in body["frameworks"][0]["tasks"]}
    assert all(tasks[t]["supported"] for t in ("detect", "segment", "pose", "classify"))  # tests/integration/tasks
    formats = {f["format"]: f for f in tasks["detect"]["formats"]}
    for name in DEFAULT_FORMATS:
        assert formats[name]["available"], formats[name]
    assert not formats["engine"]["available"] and "GPU" in formats["engine"]["reason"]
    assert formats["engine"]["gpu_required"]
    for name in ("mnn", "paddle", "litert", "coreml", "tflite"):
        assert not formats[name]["available"] and formats[name]["reason"], name
    assert formats["onnx"]["options"]["opset"]["supported"]
    assert not formats["torchscript"]["options"]["opset"]["supported"]
    assert not formats["onnx"]["options"]["int8"]["supported"] and formats["onnx"]["options"]["int8"]["reason"]


def test_every_problem_is_reported_at_once(admin: httpx.Client, trained_job: dict[str, Any]):
    options = {"half": True, "int8": True, "imgsz": 50, "colour": 1, "opset": 99, "batch": 4, "nms": True}
    problems = _problems(
        admin.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": "onnx", "options": options})
    )
    assert problems >= {
        ("#/body/options/half", "option_not_supported"),
        ("#/body/options/int8", "option_not_supported"),
        ("#/body/options/nms", "option_not_supported"),
        ("#/body/options/imgsz", "invalid_option"),
        ("#/body/options/colour", "option_not_supported"),
        ("#/body/options/opset", "invalid_option"),
        ("#/body/options/batch", "option_not_supported"),
    }


def test_shape_errors(admin: httpx.Client):
    response = admin.post("/api/v1/exports", json={"job_id": "nope", "checkpoint": "worst", "format": "onnx", "x": 1})
    pointers = {p for p, _ in _problems(response)}
    assert {"#/body/job_id", "#/body/checkpoint", "#/body/x"} <= pointers
    assert response.json()["code"] == "validation_failed"


@pytest.mark.parametrize("fmt", ["engine", "mnn", "paddle", "tflite", "no-such-format"])
def test_unavailable_formats_are_refused(admin: httpx.Client, trained_job: dict[str, Any], fmt: str):
    response = admin.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": fmt})
    assert _problems(response) == {("#/body/format", "format_unavailable")}
    assert response.json()["code"] == "format_unavailable"


def test_missing_job_and_checkpoint(admin: httpx.Client, trained_job: dict[str, Any]):
    missing = admin.post("/api/v1/exports", json={"job_id": str(uuid.uuid4()), "format": "onnx"})
    assert _problems(missing) == {("#/body/job_id", "checkpoint_not_found")}
    epoch = admin.post("/api/v1/exports", json={"job_id": trained_job["id"], "checkpoint": 99, "format": "onnx"})
    assert _problems(epoch) == {("#/body/checkpoint", "checkpoint_not_found")}


def test_another_project_cannot_export(
    gateway: httpx.Client, trained_job: dict[str, Any], other_project: dict[str, str]
):
    body = {"job_id": trained_job["id"], "format": "onnx"}
    foreign = gateway.post("/api/v1/exports", json=body, headers=other_project)
    missing = gateway.post("/api/v1/exports", json={**body, "job_id": str(uuid.uuid4())}, headers=other_project)
    assert foreign.status_code == missing.status_code == 422
    assert _problems(foreign) == _problems(missing) == {("#/body/job_id", "checkpoint_not_found")}


def test_routes_need_a_token(gateway: httpx.Client):
    assert gateway.get("/api/v1/exports").status_code == 401
    assert gateway.get("/api/v1/exports/capabilities").status_code == 401


def test_unknown_export(admin: httpx.Client):
    for method, path in (("GET", ""), ("GET", "/download"), ("DELETE", ""), ("POST", "/default")):
        response = admin.request(method, f"/api/v1/exports/{uuid.uuid4()}{path}")
        assert response.status_code == 404 and response.json()["code"] == "export_not_found"
