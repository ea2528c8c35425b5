"""The toolchain probe (real interpreters, no stack) and the rules of formats whose parity cannot run here."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from vtp_export.adapters.toolchains import Toolchains
from vtp_export.domain.formats import parity_not_run
from vtp_export.domain.model import Export
from vtp_export.service_layer.lifecycle import summary


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _probe(pythons: dict[str, str], timeout: float = 60) -> Toolchains:
    toolchains = Toolchains(pythons, timeout=timeout)

    async def probed() -> None:
        await toolchains.probe()
        await toolchains.wait_probed()

    asyncio.run(probed())
    return toolchains


def test_a_separate_venv_is_probed_by_importing_its_toolchain(tmp_path: Path):
    # A "venv" whose Python is this one: torch and ultralytics import, MNN is not installed.
    python = _script(tmp_path / "python", f'exec {sys.executable} "$@"')
    mnn = _probe({"mnn": python}).availability("mnn")
    assert not mnn.available and mnn.python == python
    assert mnn.reason is not None and "MNN" in mnn.reason and "make setup-exporters" in mnn.reason


def test_a_toolchain_that_does_not_import_is_unavailable_with_the_error(tmp_path: Path):
    site = tmp_path / "site"
    (site / "x2paddle").mkdir(parents=True)
    (site / "x2paddle" / "__init__.py").write_text("")
    (site / "x2paddle" / "convert.py").write_text("import six_is_missing_here\n")
    (site / "paddle.py").write_text("")
    python = _script(tmp_path / "python", f'PYTHONPATH={site} exec {sys.executable} "$@"')
    paddle = _probe({"paddle": python}).availability("paddle")
    assert not paddle.available and paddle.reason is not None
    assert "does not load" in paddle.reason and "six_is_missing_here" in paddle.reason


def test_a_missing_hanging_or_silent_venv_is_reported(tmp_path: Path):
    gone = str(tmp_path / "nowhere" / "python")
    hangs = _script(tmp_path / "hangs", "sleep 30")
    silent = _script(tmp_path / "silent", "exit 3")
    toolchains = _probe({"mnn": gone, "litert": hangs, "paddle": silent}, timeout=1)
    reasons = {fmt: toolchains.availability(fmt).reason or "" for fmt in ("mnn", "litert", "paddle")}
    assert "missing" in reasons["mnn"] and "make setup-exporters" in reasons["mnn"]
    assert "longer than 1 s" in reasons["litert"]
    assert "did not answer" in reasons["paddle"] and "exit code 3" in reasons["paddle"]
    assert toolchains.availability("onnx").python == sys.executable  # the default formats keep the service's own


def test_venvs_are_probed_in_the_background_and_stopped_at_shutdown(tmp_path: Path):
    marker = tmp_path / "killed-not"
    hangs = _script(tmp_path / "hangs", f"sleep 30; touch {marker}")

    async def start_and_stop() -> tuple[str | None, bool]:
        toolchains = Toolchains({"mnn": hangs}, timeout=60)
        await toolchains.probe()  # returns at once: the service starts serving
        pending = toolchains.availability("mnn")
        await toolchains.aclose()
        return pending.reason, toolchains.availability("onnx").available

    reason, onnx_available = asyncio.run(start_and_stop())
    assert reason is not None and "being probed" in reason
    assert onnx_available  # the service's own environment was probed before it started
    assert not marker.exists()


def test_coreml_parity_runs_only_on_macos():
    reason = parity_not_run("coreml", "Linux")
    assert reason is not None and "macOS" in reason
    assert parity_not_run("coreml", "Darwin") is None
    assert parity_not_run("mnn", "Linux") is None and parity_not_run("onnx", "Linux") is None


def test_a_not_run_report_is_no_pass_and_says_so_in_the_event():
    report = {"status": "not_run", "passed": False, "reason": "CoreML models run only on macOS", "failures": []}
    event = summary(report)
    assert event["status"] == "not_run" and event["passed"] is False and event["failures"] == []
    assert summary({"passed": True, "raw": {"images": 8}})["status"] == "passed"  # reports written before status
    ids = {"id": uuid.uuid4(), "project_id": uuid.uuid4(), "job_id": uuid.uuid4()}
    fields = {"version": 1, "format": "coreml", "options": {}, "task_type": "detect", "checkpoint": {}, "source": {}}
    export = Export(**ids, **fields, content_key="k", created_at=datetime.now(UTC), parity=report)
    assert not export.parity_passed
    export.parity = {"status": "passed", "passed": True}
    assert export.parity_passed
