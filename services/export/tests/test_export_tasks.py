"""Segment, pose and classify exports: which formats are offered per task, tied instances, metadata, Triton."""

from __future__ import annotations

import asyncio

import numpy as np

from vtp_export.adapters.toolchains import Toolchains
from vtp_export.child import package_tasks
from vtp_export.child.parity_tasks import tied, tolerances, verdict
from vtp_export.domain.formats import task_format_reason
from vtp_export.entrypoints.capabilities import capabilities


def test_only_verified_formats_are_offered_per_task():
    assert task_format_reason("detect", "torchscript") is None
    for task in ("segment", "pose", "classify"):
        assert task_format_reason(task, "onnx") is task_format_reason(task, "openvino") is None
        assert "not verified" in str(task_format_reason(task, "ncnn"))


def test_capabilities_refuse_unverified_formats_per_task_with_a_reason(monkeypatch):
    toolchains = Toolchains()

    async def probe(python: str, mode: str, modules: list[str], timeout: float) -> tuple[dict[str, str | None], None]:
        return dict.fromkeys(modules), None  # everything installed

    monkeypatch.setattr("vtp_export.adapters.toolchains._probe", probe)
    asyncio.run(toolchains.probe())
    tasks = {t["task"]: t for t in capabilities(toolchains)["frameworks"][0]["tasks"]}
    assert {f["format"]: f["available"] for f in tasks["detect"]["formats"]}["torchscript"]
    for task in ("segment", "pose", "classify"):
        formats = {f["format"]: f for f in tasks[task]["formats"]}
        assert tasks[task]["supported"] and formats["onnx"]["available"] and formats["torchscript"]["available"]
        assert not formats["ncnn"]["available"] and formats["ncnn"]["task_verified"] is False
        assert "not verified" in formats["ncnn"]["reason"]


def test_tied_instances_are_same_class_scores_within_eps():
    rows = np.array([
        [0, 0, 9, 9, 0.5, 1], [0, 0, 9, 9, 0.5000001, 1],  # a tie
        [0, 0, 9, 9, 0.5, 0],  # another class: no tie
        [0, 0, 9, 9, 0.7, 1],
    ])  # fmt: skip
    assert tied(rows).tolist() == [True, True, False, False]
    assert tied(np.zeros((0, 6))).tolist() == []


def test_task_verdicts_name_each_exceeded_tolerance():
    tol = tolerances("fp32", {"box_px": 0.05, "score": 1e-3, "min_iou": 0.99, "score_diff": 0.005, "metric": 0.01})
    metric = {"value": 0.5, "box": 0.5}
    segment = {"max_box_diff_px": 0.0, "max_coef_diff": 0.5, "mean_mask_iou": 0.5, "unmatched": 0}
    assert [f.split(" ")[0] for f in verdict("segment", segment, metric, metric, tol)] == ["mask", "mean"]
    pose = {"max_kpt_diff_px": 1.0, "max_kpt_dist_px": 0.0, "unmatched": 0}
    assert verdict("pose", pose, metric, {"value": 0.4, "box": 0.5}, tol) == [
        "keypoint outputs differ by 1 > 0.05",
        "mAP50-95 (pose) moved by -0.1000 (limit 0.01)",
    ]
    classify = {"max_prob_diff": 0.0, "top1_agreement": 0.5, "top5_agreement": 1.0}
    assert verdict("classify", classify, {"value": 1.0}, {"value": 1.0}, tol) == ["top-1 agreement 0.5000 < 1.0"]


def _spec(task: str) -> dict:
    return {
        "task_type": task,
        "format": "onnx",
        "job_id": "j",
        "version": 1,
        "snapshot_id": "s",
        "checkpoint_info": {"sha256": "0" * 64, "kind": "best"},
        "options": {"imgsz": 64, "batch": 1, "dynamic": True},
    }


def test_metadata_describes_each_task_outputs_and_classify_preprocessing():
    names = {0: "circle", 1: "square", 2: "triangle"}
    seg = package_tasks.metadata(_spec("segment"), names, [[1, 39, 84], [1, 32, 16, 16]], "model.onnx", None)
    assert seg["output"]["names"] == ["output0", "output1"] and seg["output"]["mask_coefficients"] == 32
    pose = package_tasks.metadata(_spec("pose"), names, [[1, 16, 84]], "model.onnx", [3, 3])
    assert pose["kpt_shape"] == [3, 3] == pose["output"]["kpt_shape"]
    cls = package_tasks.metadata(_spec("classify"), names, [[1, 3]], "model.onnx", None)
    assert "letterbox" not in cls["input"] and cls["input"]["resize"]["center_crop"] == [64, 64]
    config = package_tasks.triton_config("model", seg)
    assert 'name: "output0" data_type: TYPE_FP32 dims: [39, 84]' in config
    assert 'name: "output1" data_type: TYPE_FP32 dims: [32, 16, 16]' in config


def test_predictor_check_thresholds():
    ok = {"mismatched": 0, "max_box_px": 0.0, "max_score": 0.0, "max_kpt_px": 0.0, "min_polygon_iou": 1.0}
    assert package_tasks.predictor_ok(ok)
    assert not package_tasks.predictor_ok({**ok, "min_polygon_iou": 0.5})
    assert not package_tasks.predictor_ok({**ok, "max_kpt_px": 0.5})
    assert not package_tasks.predictor_ok({**ok, "mismatched": 1})
