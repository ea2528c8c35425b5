"""The heavy export formats (`make test-exporters`): MNN, LiteRT, Paddle and CoreML, each exported by a child
running in its own venv (`make setup-exporters`), with its parity report and its package's predict.py.

Left out of `make test` (marker `exporters`): the venvs take `make setup-exporters`, which CI does not run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from .conftest import wait_export, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.exporters]
CHECKED = ("mnn", "litert", "paddle")  # their runtimes run here: a real parity run and predict.py check
HEAVY = (*CHECKED, "coreml")  # CoreML converts on Linux; its runtime needs macOS
MODEL_FILES = {
    "mnn": "model.mnn",
    "litert": "model.tflite",
    "paddle": "model_paddle_model/",
    "coreml": "model.mlpackage/",
}


@pytest.fixture(scope="module")
def toolchains(stack: LocalStack) -> dict[str, str]:
    """Format -> the Python of its venv, as the stack gave them to the export service."""
    pythons: dict[str, str] = json.loads(stack.cfg.export_toolchains.read_text())
    assert set(HEAVY) <= set(pythons), f"make setup-exporters did not build every toolchain: {pythons}"
    return pythons


@pytest.fixture(scope="module")
def heavy(
    admin_token: str, stack: LocalStack, trained_job: dict[str, Any], toolchains: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """One export per heavy format, all requested at once, each waited for."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=30) as api:

        def offered() -> dict[str, Any]:
            tasks = {t["task"]: t for t in api.get("/api/v1/exports/capabilities").json()["frameworks"][0]["tasks"]}
            return {f["format"]: f for f in tasks["detect"]["formats"]}

        # The venvs are probed in the background at start-up (each imports torch and its toolchain).
        formats = wait_for(
            offered, lambda f: not any("being probed" in (f[n]["reason"] or "") for n in HEAVY), timeout=600
        )
        for fmt in HEAVY:
            assert formats[fmt]["available"], formats[fmt]
        queued = {}
        for fmt in HEAVY:
            response = api.post("/api/v1/exports", json={"job_id": trained_job["id"], "format": fmt})
            assert response.status_code == 202, response.text
            queued[fmt] = response.json()
        return {fmt: wait_export(api, e["id"], timeout=1200) for fmt, e in queued.items()}


def _download(api: httpx.Client, export: dict[str, Any], into: Path) -> set[str]:
    response = api.get(f"/api/v1/exports/{export['id']}/download")
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == export["artifact"]["sha256"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(into)
        return set(archive.namelist())


@pytest.mark.parametrize("fmt", CHECKED)
def test_heavy_format_succeeds_with_a_parity_run(admin: httpx.Client, heavy: dict[str, Any], fmt: str):
    export = heavy[fmt]
    assert export["status"] == "succeeded", (export["error"], export["parity"])
    parity = export["parity"]
    print(f"\n{fmt} parity: raw {json.dumps(parity['raw'])} metric {json.dumps(parity['metric'])}")
    print(f"{fmt} predictor: {json.dumps(parity['predictor'])}")
    print(f"{fmt} timings: {json.dumps(export['timings'])} size {export['artifact']['size_bytes']} B")
    assert parity["status"] == "passed" and parity["passed"] and parity["failures"] == []
    assert parity["raw"]["images"] > 0 and parity["raw"]["matched"] == parity["raw"]["detections"] > 0
    assert parity["raw"]["max_box_diff_px"] < 0.05 and parity["raw"]["unmatched"] == 0
    assert parity["metric"]["name"] == "mAP50-95" and abs(parity["metric"]["delta"]) <= 0.01
    assert parity["predictor"]["mismatched"] == 0
    versions = export["metadata"]["export"]["versions"]
    assert versions["ultralytics"] and versions["torch"] == "2.14.1"


@pytest.mark.parametrize("fmt", CHECKED)
def test_heavy_package_predictor_reproduces_the_platform(
    admin: httpx.Client, heavy: dict[str, Any], toolchains: dict[str, str], fmt: str, tmp_path: Path
):
    names = _download(admin, heavy[fmt], tmp_path)
    assert {"metadata.json", "predict.py", "README.md", "samples/expected.json"} <= names
    assert any(n.startswith(MODEL_FILES[fmt]) for n in names)
    expected = json.loads((tmp_path / "samples" / "expected.json").read_text())
    images = sorted(str(p) for p in (tmp_path / "samples").glob("*") if p.suffix != ".json")
    args = ["predict.py", *images, "--json", "--conf", str(expected["conf"]), "--iou", str(expected["iou"])]
    # The format's runtime is in its venv only: the package's predictor runs there, as a user would run it.
    out = subprocess.run(
        [toolchains[fmt], *args], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(got) == set(expected["detections"])
    for name, want in expected["detections"].items():
        assert len(got[name]) == len(want), name
        for g, w in zip(got[name], want, strict=True):
            assert g["class"] == w["class"] and abs(g["score"] - w["score"]) < 1e-4
            assert max(abs(a - b) for a, b in zip(g["box"], w["box"], strict=True)) < 1e-2


SCALED_TWICE = """
import json, sys
from pathlib import Path
from vtp_export.child import parity

good, twice = parity.load(sys.argv[1]), parity.load(sys.argv[1])
forward = twice.backend.forward


def scaled_again(im):  # what a loader that denormalises boxes the model already gave in pixels puts out
    y = forward(im)
    for x in y:
        x[:, [0, 2]] *= im.shape[3]
        x[:, [1, 3]] *= im.shape[2]
    return y


twice.backend.forward = scaled_again
images, imgsz = [Path(p) for p in sys.argv[3:]], int(sys.argv[2])
raw, _ = parity.compare_outputs(good, twice, images, imgsz, 0.001, 1e-3)
tolerances = json.loads(sys.stdin.read())
print(json.dumps({"raw": raw, "failures": parity.verdict(raw, 0.0, 0.0, tolerances)}))
"""


def test_litert_boxes_scaled_twice_fail_the_parity_gate(
    admin: httpx.Client, heavy: dict[str, Any], toolchains: dict[str, str], tmp_path: Path
):
    """The real LiteRT model, loaded once right and once with every box scaled again (the TensorFlow
    route's defect): the parity gate, run in the LiteRT venv, refuses the second against the first."""
    export = heavy["litert"]
    _download(admin, export, tmp_path)
    images = sorted(str(p) for p in (tmp_path / "samples").glob("*") if p.suffix != ".json")
    src = Path(__file__).resolve().parents[3] / "services" / "export" / "src"
    args = [toolchains["litert"], "-c", SCALED_TWICE, str(tmp_path / MODEL_FILES["litert"]), "64", *images]
    env = {**os.environ, "PYTHONPATH": str(src), "YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false"}
    tolerances = json.dumps(export["parity"]["tolerances"])
    out = subprocess.run(args, input=tolerances, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["raw"]["max_box_diff_px"] > 100  # boxes of a 64 px input, 64 times too large
    assert any(f.startswith("box outputs differ") for f in result["failures"]), result["failures"]


def test_coreml_succeeds_with_its_parity_not_run(admin: httpx.Client, heavy: dict[str, Any], tmp_path: Path):
    export = heavy["coreml"]
    assert export["status"] == "succeeded", export["error"]
    parity = export["parity"]
    assert parity["status"] == "not_run" and parity["passed"] is False and "macOS" in parity["reason"]
    assert "raw" not in parity and "metric" not in parity  # no number for a comparison that was not made
    assert parity["warnings"] and not export["is_default"]
    names = _download(admin, export, tmp_path)
    assert any(n.startswith(MODEL_FILES["coreml"]) for n in names) and "samples/expected.json" in names
    assert "Not run" in (tmp_path / "README.md").read_text()
    # Never the job's default (deployments pick the default), and never deployed.
    refused = admin.post(f"/api/v1/exports/{export['id']}/default")
    assert refused.status_code == 409 and "not run" in refused.json()["detail"]
    deployment = admin.post(
        "/api/v1/deployments", json={"export_id": export["id"], "name": f"c-{uuid.uuid4().hex[:6]}"}
    )
    assert deployment.status_code == 422, deployment.text
    assert "export_parity_failed" in {e["code"] for e in deployment.json()["errors"]}


def test_the_default_is_an_export_whose_parity_passed(admin: httpx.Client, heavy: dict[str, Any]):
    job_id = heavy["mnn"]["job_id"]
    defaults = admin.get("/api/v1/exports", params={"job_id": job_id, "default": True}).json()["items"]
    assert len(defaults) == 1 and defaults[0]["parity"]["passed"], defaults
