"""`vtp export` waits and prints the parity report; `vtp exports ls|show|download`."""

from __future__ import annotations

import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import Vtp

pytestmark = pytest.mark.integration
Exported = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def test_export_prints_the_parity_report(exported: Exported) -> None:
    result, export = exported
    assert export["status"] == "succeeded" and export["parity"]["passed"]
    assert "parity passed (fp32" in result.stdout
    assert "max box diff (px)" in result.stdout and "mAP50-95 checkpoint -> export" in result.stdout
    assert f"next: vtp deploy {export['id']}" in result.stdout


def test_exports_ls_show_download(vtp: Vtp, exported: Exported, tmp_path: Path) -> None:
    export = exported[1]
    listed = vtp.json("exports", "ls", "--job", export["job_id"])
    assert [e["id"] for e in listed["items"]] == [export["id"]]
    assert "parity passed" in vtp("exports", "show", export["id"]).stdout
    result = vtp("exports", "download", export["id"], "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (package,) = tmp_path.glob("*.zip")
    assert {"model.onnx", "metadata.json", "predict.py"} <= set(zipfile.ZipFile(package).namelist())


def test_export_refusals(vtp: Vtp, exported: Exported) -> None:
    unknown = vtp("export", str(uuid.uuid4()))
    assert unknown.returncode == 1 and "checkpoint_not_found" in unknown.stderr
    refused = vtp("export", exported[1]["job_id"], "--format", "onnx", "int8=true", "opset=99")
    assert refused.returncode == 1
    assert "#/body/options/int8" in refused.stderr and "#/body/options/opset" in refused.stderr
    assert vtp("exports", "show", str(uuid.uuid4())).returncode == 3
