"""The package's files and zip, for detection (`package.build`) and the other tasks (`package_tasks.build`)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from vtp_export.child import package, package_tasks

REPORT = {
    "status": "passed",
    "precision": "fp32",
    "raw": {"images": 1, "detections": 1, "matched": 1, "max_abs_diff": 0.0, "max_box_diff_px": 0.0},
    "metric": {"name": "mAP50-95", "checkpoint": 0.5, "export": 0.5},
}


def _spec(fmt: str, task: str) -> dict[str, Any]:
    return {
        "format": fmt,
        "task_type": task,
        "options": {"imgsz": 64, "batch": 1},
        "job_id": "job",
        "version": 3,
        "checkpoint_info": {"sha256": "0" * 64},
        "snapshot_id": "snap",
        "parity_conf": 0.001,
    }


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    exported, sample = tmp_path / "best.onnx", tmp_path / "a.jpg"
    exported.write_bytes(b"onnx bytes")
    sample.write_bytes(b"jpeg bytes")
    return exported, sample


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_detection_package(tmp_path: Path, fmt: str) -> None:
    exported, sample = _inputs(tmp_path)
    spec = _spec(fmt, "detect")
    meta = package.metadata(spec, {0: "circle"}, [1, 5, 84], "model.onnx")
    expected = {"a.jpg": [[1.0, 2.0, 3.0, 4.0, 0.9, 0.0]]}
    archive = package.build(spec, exported, "model.onnx", meta, REPORT, [sample], expected, tmp_path / "out")
    assert archive.name == f"export-v3-{fmt}.zip"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        triton = {"triton/model/1/model.onnx", "triton/model/config.pbtxt"} if fmt == "onnx" else set()
        want = {"model.onnx", "metadata.json", "predict.py", "README.md", "samples/a.jpg", "samples/expected.json"}
        assert names == want | triton
        assert zf.read("predict.py") == (package.ASSETS / "predict.py").read_bytes()
        assert json.loads(zf.read("metadata.json"))["parity"] == REPORT
        doc = json.loads(zf.read("samples/expected.json"))
        assert doc == {
            "conf": 0.001,
            "iou": 0.7,
            "detections": {"a.jpg": [{"box": [1.0, 2.0, 3.0, 4.0], "score": 0.9, "class": 0, "name": "circle"}]},
        }
        if fmt == "onnx":
            assert zf.read("triton/model/1/model.onnx") == b"onnx bytes"
            assert 'output [{ name: "output0"' in zf.read("triton/model/config.pbtxt").decode()


def test_a_task_package(tmp_path: Path) -> None:
    exported, sample = _inputs(tmp_path)
    spec = _spec("onnx", "segment")
    meta = package_tasks.metadata(spec, {0: "circle"}, [[1, 38, 84], [1, 32, 16, 16]], "model.onnx", None)
    answers = {"a.jpg": {"rows": [[1.0, 2.0, 3.0, 4.0, 0.9, 0.0]], "polygons": [[[[1.0, 2.0], [3.0, 4.0]]]]}}
    report = {**REPORT, "raw": {"images": 1, "max_abs_diff": 0.0}}
    archive = package_tasks.build(spec, exported, "model.onnx", meta, report, [sample], answers, tmp_path / "out")
    with zipfile.ZipFile(archive) as zf:
        assert {"predict.py", "predict_base.py", "samples/expected.json", "triton/model/config.pbtxt"} <= set(
            zf.namelist()
        )
        assert zf.read("predict.py") == (package.ASSETS / "predict_task.py").read_bytes()
        assert zf.read("predict_base.py") == (package.ASSETS / "predict.py").read_bytes()
        assert json.loads(zf.read("samples/expected.json")) == {
            "conf": 0.001,
            "iou": 0.7,
            "task": "segment",
            "answers": answers,
        }
        config = zf.read("triton/model/config.pbtxt").decode()
        assert '{ name: "output0"' in config and '{ name: "output1"' in config
