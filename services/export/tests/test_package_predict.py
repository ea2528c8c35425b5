"""The package's predict.py answers exactly the platform's detections (parity.detections: Ultralytics'
NMS and scale_boxes), on hand-made raw outputs: the same rows, to the last bit."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from vtp_export.child import package
from vtp_export.child.parity import detections

NAMES = {"0": "circle", "1": "square", "2": "triangle"}
MAX_WH = 7680


@pytest.fixture()
def predict_py(tmp_path: Path) -> ModuleType:
    """predict.py as a package ships it (it reads metadata.json beside it at import)."""
    shutil.copy2(package.ASSETS / "predict.py", tmp_path / "predict.py")
    (tmp_path / "metadata.json").write_text(json.dumps({"names": NAMES, "input": {"imgsz": 320}}))
    spec = importlib.util.spec_from_file_location("package_predict_under_test", tmp_path / "predict.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeModel:
    """The runtime behind predict.py's Model: always this raw output."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    def __call__(self, x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.shape[:2] == (1, 3)
        return self.raw


def _raw(anchors: list[tuple[float, float, float, float, float, int]], classes: int = 3) -> np.ndarray:
    """[1, 4 + classes, anchors] from (cx, cy, w, h, score, class) rows, other classes at 0."""
    raw = np.zeros((1, 4 + classes, len(anchors)), dtype=np.float32)
    for k, (cx, cy, w, h, score, cls) in enumerate(anchors):
        raw[0, :4, k] = [cx, cy, w, h]
        raw[0, 4 + cls, k] = score
    return raw


def _predict_py(module: ModuleType, raw: np.ndarray, shape: tuple[int, int], conf: float) -> np.ndarray:
    found = module.predict(FakeModel(raw), np.zeros((*shape, 3), np.uint8), conf=conf, iou=0.7)
    return np.array([[*d["box"], d["score"], d["class"]] for d in found], dtype=np.float64).reshape(-1, 6)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return float(inter / (area_a + area_b - inter))


def test_near_threshold_overlap_keeps_the_platforms_box(predict_py: ModuleType) -> None:
    # The bench's case (160x128 images at 320 px: gain 2): C and A of class 2 overlap at IoU 0.7
    # to 3e-6. NMS offsets class 2 by 15360 px: in float32, as the platform, the offset rounds the
    # coordinates and the IoU comes out above 0.7, so A is suppressed and B (its near twin, 0.03 px
    # to the right, 1.2e-7 lower) is kept; predict.py did the offset in float64, kept A, suppressed
    # B, and answered a box 0.015 px from the platform's.
    dx = 10.588354
    c, a, b = (100.0, 100.0, 60.0, 40.0), (100.0 + dx, 100.0, 60.0, 40.0), (100.03 + dx, 100.0, 60.0, 40.0)
    raw = _raw([(*c, 0.9, 2), (*a, 0.5, 2), (*b, float(np.float32(0.5) - np.float32(1.2e-7)), 2)])
    xyxy = np.concatenate([raw[0, :2] - raw[0, 2:4] / 2, raw[0, :2] + raw[0, 2:4] / 2]).T
    in_float64 = _iou(*(xyxy[[0, 1]].astype(np.float64) + 2 * MAX_WH))
    in_float32 = _iou(*(xyxy[[0, 1]] + np.float32(2 * MAX_WH)).astype(np.float64))
    assert in_float64 <= 0.7 < in_float32  # the premise: the offset's rounding crosses the threshold

    platform = detections(raw, 320, (128, 160), conf=0.25)
    assert platform[:, 4].tolist() == [raw[0, 6, 0], raw[0, 6, 2]]  # C and B
    got = _predict_py(predict_py, raw, (128, 160), conf=0.25)
    assert np.array_equal(got, platform), np.abs(got - platform).max()


def test_the_platforms_nms_is_torchvisions_in_stable_order() -> None:
    # Without torchvision imported, Ultralytics runs its own NMS, which leaves equal scores in no
    # defined order; parity imports it, so ties are broken by anchor order, as predict.py does.
    assert "torchvision" in sys.modules
    n = 3000
    scores = np.random.default_rng(1).choice(np.float32([0.1, 0.2, 0.5, 0.7]), n)
    raw = _raw([(20 * k + 5, 5, 10, 10, float(s), 0) for k, s in enumerate(scores)], classes=1)
    rows = detections(raw, 64 * n, (64 * n, 64 * n), conf=0.05)  # nothing overlaps: all kept, in NMS order
    order = np.argsort(-scores, kind="stable")[:300]
    assert np.array_equal(rows[:, 0], raw[0, 0, order] - 5)


@pytest.mark.parametrize("shape", [(128, 160), (427, 640), (333, 500), (720, 1280), (640, 101)])
def test_many_overlapping_candidates_come_out_bit_for_bit(predict_py: ModuleType, shape: tuple[int, int]) -> None:
    # An undertrained model at conf 0.001: hundreds of candidates in clusters, three classes, scores
    # equal or 1 ulp apart, boxes reaching into the padding and out of the image, max_det cutting;
    # images whose letterbox gain and padding round (427 x 640: 213.5 rows; 101 x 640: 50.5 columns).
    rng = np.random.default_rng(sum(shape))
    centres = rng.uniform(0, 320, (12, 2))
    scores = rng.permutation(np.linspace(0.0011, 0.9, 600, dtype=np.float32))
    scores[1::7] = np.nextafter(scores[::7][: len(scores[1::7])], np.float32(1))  # 1 ulp above another
    scores[2::5] = rng.choice(np.float32([0.0010423, 0.25, 0.5]), len(scores[2::5]))  # exactly equal
    anchors = []
    for k, score in enumerate(scores.tolist()):
        cx, cy = centres[k % 12] + rng.normal(0, 3, 2)
        w, h = rng.uniform(5, 120, 2)
        anchors.append((cx, cy, w, h, score, int(rng.integers(0, 3))))
    raw = _raw(anchors)
    for conf in (0.001, 0.25):
        platform = detections(raw, 320, shape, conf=conf)
        got = _predict_py(predict_py, raw, shape, conf=conf)
        assert len(platform) > 10 and np.array_equal(got, platform)
