"""The parity gate catches an export whose boxes come out at the wrong scale (e.g. scaled twice, as the
TensorFlow SavedModel route's .tflite loads), through the same code the exporter child runs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from vtp_export.child.parity import compare_outputs, verdict

TOL = {"box_px": 0.05, "score": 1e-3, "min_iou": 0.99, "score_diff": 0.005, "class_agreement": 1.0, "metric": 0.01}
IMGSZ = 64


class Backend:
    """A model whose raw output is fixed: [1, 4 + classes, anchors], boxes cx, cy, w, h in input pixels."""

    def __init__(self, output: np.ndarray) -> None:
        self.output = output

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.output)


def _raw() -> np.ndarray:
    rng = np.random.default_rng(0)
    anchors = 84
    boxes = np.stack([rng.uniform(8, 56, anchors), rng.uniform(8, 56, anchors), *rng.uniform(4, 12, (2, anchors))])
    scores = rng.uniform(0, 0.05, (3, anchors))
    scores[0, :4] = 0.9  # a few clear detections of class 0
    return np.concatenate([boxes, scores])[None].astype(np.float32)


def _images(tmp_path: Path) -> list[Path]:
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((96, 96, 3), 90, np.uint8))
    return [path]


def test_boxes_scaled_twice_fail_the_gate(tmp_path: Path):
    checkpoint = _raw()
    scaled = checkpoint.copy()
    scaled[:, :4] *= IMGSZ  # denormalised by the input size once more than the model normalised them
    raw, _ = compare_outputs(Backend(checkpoint), Backend(scaled), _images(tmp_path), IMGSZ, 0.001, 1e-3)  # type: ignore[arg-type]
    failures = verdict(raw, 0.5, 0.5, TOL)
    assert raw["max_box_diff_px"] > 100
    assert any(f.startswith("box outputs differ") for f in failures)
    assert any("clearly above the threshold in only one model" in f for f in failures)


def test_the_same_output_passes(tmp_path: Path):
    checkpoint = _raw()
    raw, _ = compare_outputs(Backend(checkpoint), Backend(checkpoint.copy()), _images(tmp_path), IMGSZ, 0.001, 1e-3)  # type: ignore[arg-type]
    assert verdict(raw, 0.5, 0.5, TOL) == [] and raw["matched"] == raw["detections"] > 0
