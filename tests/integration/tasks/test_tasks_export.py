"""Segment, pose and classify exports to ONNX: each succeeds with its task's parity report and metadata, its
package's predict.py reproduces the platform's answers, and formats not verified for a task are refused."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from vtp_export.child.parity_tasks import tied

from .conftest import TASKS, wait_export

pytestmark = pytest.mark.integration


def test_each_task_exports_with_its_own_parity_report(task_exports: dict[str, dict[str, Any]]):
    for task in TASKS:
        export = task_exports[task]
        assert export["status"] == "succeeded", (task, export["error"], export.get("parity"))
        parity, meta = export["parity"], export["metadata"]
        assert parity["passed"] and parity["task"] == task and parity["failures"] == []
        raw, metric = parity["raw"], parity["metric"]
        assert raw["images"] >= 1 and raw["max_abs_diff"] < 1e-3
        assert metric["split"] == "val" and abs(metric["delta"]) <= parity["tolerances"]["metric"]
        assert parity["predictor"]["mismatched"] == 0
        assert meta["task"] == task and sorted(meta["names"].values()) == ["circle", "square", "triangle"]
        if task == "segment":
            assert metric["name"] == "mAP50-95 (mask)" and "box" in metric
            assert raw["matched"] == raw["detections"] > 0 and raw["min_iou"] >= 0.99
            assert raw["max_coef_diff"] < 1e-2 and raw["max_proto_diff"] < 1e-2
            assert raw["mean_mask_iou"] is None or raw["mean_mask_iou"] >= 0.9
            assert meta["output"]["names"] == ["output0", "output1"]
            assert meta["output"]["shapes"][0][1] == 4 + 3 + 32 and meta["output"]["shapes"][1][1] == 32
            assert parity["predictor"]["min_polygon_iou"] >= 0.9
        elif task == "pose":
            assert metric["name"] == "mAP50-95 (pose)" and "box" in metric
            assert raw["matched"] == raw["detections"] > 0 and raw["max_kpt_diff_px"] < 0.05
            assert meta["kpt_shape"] == [3, 3] and meta["output"]["shape"][1] == 4 + 3 + 9
            assert parity["predictor"]["max_kpt_px"] <= 0.01
        else:
            assert metric["name"] == "top-1 accuracy" and "top5" in metric
            assert raw["top1_agreement"] == 1.0 and raw["top5_agreement"] == 1.0 and raw["max_prob_diff"] < 1e-3
            assert meta["output"]["shape"] == [1, 3]
            assert "letterbox" not in meta["input"] and meta["input"]["resize"]["shortest_side"] == 64


def _polygon_iou(a: list, b: list, shape: tuple[int, int]) -> float:
    def raster(polys: list) -> np.ndarray:
        canvas = np.zeros(shape, np.uint8)
        pts = [np.round(np.asarray(p)).astype(np.int32).reshape(-1, 1, 2) for p in polys if len(p)]
        if pts:
            cv2.fillPoly(canvas, pts, 1)
        return canvas

    ra, rb = raster(a), raster(b)
    union = int((ra | rb).sum())
    return float((ra & rb).sum()) / union if union else 1.0


def test_package_predict_py_reproduces_the_platform(
    admin: httpx.Client, task_exports: dict[str, dict[str, Any]], tmp_path: Path
):
    for task in TASKS:
        data = admin.get(f"/api/v1/exports/{task_exports[task]['id']}/download", timeout=120).content
        root = tmp_path / task
        zipfile.ZipFile(io.BytesIO(data)).extractall(root)
        expected = json.loads((root / "samples" / "expected.json").read_text())
        assert expected["task"] == task and {"predict.py", "predict_base.py", "metadata.json"} <= {
            p.name for p in root.iterdir()
        }
        samples = sorted(str(p) for p in (root / "samples").iterdir() if p.suffix != ".json")
        out = subprocess.run(
            [sys.executable, "predict.py", *samples, "--json", "--conf", str(expected["conf"])],
            cwd=root, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        got = json.loads(out.stdout)
        compared = seen = 0
        for name, want in expected["answers"].items():
            mine = got[name]
            if task == "classify":
                assert [d["class"] for d in mine["top5"]] == [c for c, _ in want["top5"]], name
                assert max(abs(d["score"] - s) for d, (_, s) in zip(mine["top5"], want["top5"], strict=True)) < 1e-4
                compared += 1
                seen += 1
                continue
            # As the export's own check: instances tied in score with another of their class survive NMS
            # by sort order alone, so only the untied ones are compared (each strictly).
            clear = [k for k, t in enumerate(tied(np.asarray(want["rows"]).reshape(-1, 6))) if not t]
            rows = np.asarray([[*d["box"], d["score"], d["class"]] for d in mine]).reshape(-1, 6)
            ours = [mine[k] for k, t in enumerate(tied(rows)) if not t]
            assert len(ours) == len(clear), name
            shape = cv2.imread(str(root / "samples" / name)).shape[:2]
            for k in clear:
                row = want["rows"][k]
                same = [
                    d for d in ours if d["class"] == int(row[5]) and np.abs(np.array(d["box"]) - row[:4]).max() < 0.01
                ]
                assert same and min(abs(d["score"] - row[4]) for d in same) < 1e-4, (name, row)
                best = min(same, key=lambda d: abs(d["score"] - row[4]))
                if task == "segment":
                    assert _polygon_iou(best["polygons"], want["polygons"][k], shape) >= 0.9
                else:
                    assert np.abs(np.array(best["keypoints"]) - np.array(want["keypoints"][k])).max() < 0.01
                compared += 1
            seen += len(want["rows"])  # the tied ones are covered by the export's raw-output comparison only
        assert seen > 0, task
        print(task, "instances", seen, "compared untied", compared)


def test_torchscript_and_openvino_exports_pass_each_task_gate(
    admin: httpx.Client, task_jobs: dict[str, Any], task_openvino_exports: dict[str, dict[str, Any]]
):
    queued = {}
    for task in TASKS:
        response = admin.post("/api/v1/exports", json={"job_id": task_jobs[task]["id"], "format": "torchscript"})
        assert response.status_code == 202, response.text
        queued[task, "torchscript"] = response.json()["id"]
    done = {(task, "openvino"): export for task, export in task_openvino_exports.items()}  # shared with predict
    for (task, fmt), export_id in queued.items():
        done[task, fmt] = wait_export(admin, export_id, timeout=900)
    for (task, fmt), export in done.items():
        assert export["status"] == "succeeded", (task, fmt, export["error"], export.get("parity"))
        parity = export["parity"]
        assert parity["passed"] and parity["task"] == task and parity["raw"]["max_abs_diff"] < 1e-3, (task, fmt)
        assert parity["predictor"]["mismatched"] == 0 and export["metadata"]["task"] == task


def test_capabilities_list_per_task_the_formats_that_work(admin: httpx.Client):
    body = admin.get("/api/v1/exports/capabilities").json()
    tasks = {t["task"]: t for t in body["frameworks"][0]["tasks"]}
    for task in TASKS:
        assert tasks[task]["supported"]
        formats = {f["format"]: f for f in tasks[task]["formats"]}
        for fmt in ("onnx", "torchscript", "openvino"):
            assert formats[fmt]["available"], formats[fmt]
        for other in ("ncnn", "mnn", "litert", "paddle", "coreml"):
            assert not formats[other]["available"] and "not verified" in formats[other]["reason"]
    detect = {f["format"]: f for f in tasks["detect"]["formats"]}
    assert detect["torchscript"]["available"]


def test_unverified_format_for_a_task_is_refused(admin: httpx.Client, task_jobs: dict[str, Any]):
    response = admin.post("/api/v1/exports", json={"job_id": task_jobs["segment"]["id"], "format": "ncnn"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "task_not_supported"
    assert {(e["pointer"], e["code"]) for e in body["errors"]} == {("#/body/format", "task_not_supported")}
