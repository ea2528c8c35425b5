"""Segment, pose and classify postprocessing on hand-made tensors: polygons, keypoints, top-5, answers, checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from vtp_inference.adapters.runtimes import ModelInvalid
from vtp_inference.predict import classify, pose, segment
from vtp_inference.predict.detect import letterbox
from vtp_inference.predict.instances import nms_with_extra
from vtp_inference.service_layer import tasks


def _raw(rows: list[tuple[float, float, float, float, int, float, list[float]]], nc: int = 2) -> np.ndarray:
    """[4 + nc + extra, anchors] from (cx, cy, w, h, class, score, extra) rows."""
    extra = len(rows[0][6])
    out = np.zeros((4 + nc + extra, len(rows)), np.float32)
    for i, (cx, cy, w, h, c, s, e) in enumerate(rows):
        out[:4, i] = (cx, cy, w, h)
        out[4 + c, i] = s
        out[4 + nc :, i] = e
    return out


def test_nms_keeps_each_row_with_its_own_extra_columns():
    raw = _raw([
        (20, 20, 10, 10, 0, 0.9, [1, 2, 3]),
        (21, 20, 10, 10, 0, 0.8, [4, 5, 6]),  # suppressed by the first
        (21, 20, 10, 10, 1, 0.7, [7, 8, 9]),  # other class: kept
        (50, 50, 10, 10, 1, 0.1, [0, 0, 0]),  # under the threshold
    ])  # fmt: skip
    rows, extra = nms_with_extra(raw, nc=2, conf=0.25, iou=0.7, max_det=300, classes=None)
    assert rows[:, 5].tolist() == [0, 1] and extra.tolist() == [[1, 2, 3], [7, 8, 9]]
    assert np.allclose(rows[0, :4], [15, 15, 25, 25])
    rows, extra = nms_with_extra(raw, 2, 0.25, 0.7, 300, [1])
    assert rows[:, 5].tolist() == [1] and extra.tolist() == [[7, 8, 9]]
    rows, extra = nms_with_extra(raw, 2, 0.95, 0.7, 300, None)
    assert rows.shape == (0, 6) and extra.shape == (0, 3)


def test_masks_are_coefficients_times_prototypes_positive_inside_the_box():
    protos = np.ones((2, 8, 8), np.float32)
    protos[1] = -1
    coefs = np.array([[1.0, 0.5], [0.5, 1.0]], np.float32)  # logits +0.5 (a mask) and -0.5 (none)
    boxes = np.array([[8, 4, 24, 20], [0, 0, 32, 32]], np.float32)
    binary = segment.masks(protos, coefs, boxes, 32)
    assert binary.shape == (2, 32, 32) and binary.dtype == np.uint8
    expected = np.zeros((32, 32), np.uint8)
    expected[4:20, 8:24] = 1  # rows y1..y2-1, columns x1..x2-1
    assert (binary[0] == expected).all() and binary[1].sum() == 0
    assert segment.masks(protos, np.zeros((0, 2), np.float32), np.zeros((0, 4)), 32).shape == (0, 32, 32)


def test_polygons_are_outer_contours_in_original_image_pixels():
    image = np.zeros((32, 64, 3), np.uint8)  # w 64, h 32 -> into 32 px: gain 0.5, padded 8 px top and bottom
    boxed = letterbox(image, 32)
    assert boxed.gain == (0.5, 0.5) and boxed.pad == (0, 8)
    binary = np.zeros((2, 32, 32), np.uint8)
    binary[0, 10:20, 4:12] = 1  # one rectangle
    binary[1, 10:12, 2:4] = 1  # two separate blobs: two polygons
    binary[1, 20:22, 20:24] = 1
    polys = segment.polygons(binary, boxed, (32, 64))
    assert len(polys) == 2 and len(polys[0]) == 1 and len(polys[1]) == 2
    xs, ys = np.asarray(polys[0][0])[:, 0], np.asarray(polys[0][0])[:, 1]
    assert (xs.min(), xs.max()) == (8.0, 22.0) and (ys.min(), ys.max()) == (4.0, 22.0)  # (px - pad) / gain
    assert segment.polygons(np.zeros((1, 32, 32), np.uint8), boxed, (32, 64)) == [[]]


def test_keypoints_scale_like_boxes_clip_and_keep_their_score():
    boxed = letterbox(np.zeros((32, 64, 3), np.uint8), 32)
    extra = np.array([[4, 12, 0.9, 30, 8, 0.2, -2, 40, 0.5]], np.float32)  # 3 keypoints x (x, y, score)
    kpts = pose.keypoints(extra, [3, 3], boxed, (32, 64))
    assert kpts.shape == (1, 3, 3)
    assert np.allclose(kpts[0, 0], [8, 8, 0.9]) and np.allclose(kpts[0, 1], [60, 0, 0.2])
    assert np.allclose(kpts[0, 2], [0, 32, 0.5])  # clipped to the image


def test_classify_preprocessing_equals_ultralytics_classify_transforms():
    from PIL import Image
    from ultralytics.data.augment import classify_transforms

    rng = np.random.default_rng(0)
    for h, w in ((50, 81), (81, 50), (64, 64), (20, 30)):
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        ours = classify.preprocess(image, 32)
        theirs = classify_transforms(32)(Image.fromarray(image[..., ::-1].copy())).numpy()[None]
        assert ours.shape == (1, 3, 32, 32) and np.abs(ours - theirs).max() < 1e-6, (h, w)


def test_top_k_orders_by_probability_within_the_asked_classes():
    probs = np.array([0.1, 0.5, 0.05, 0.3, 0.05], np.float32)
    assert [c for c, _ in classify.top_k(probs, 3)] == [1, 3, 0]
    assert [c for c, _ in classify.top_k(probs, 5, [0, 2])] == [0, 2]
    assert classify.top_k(probs, 1)[0] == (1, pytest.approx(0.5))


@dataclass
class Fake:
    """A model with hand-made outputs, as a runtime adapter exposes them."""

    outs: list[np.ndarray]
    input_shape: list[Any]
    platform: str = "fake"
    input_name: str = "images"
    output_name: str = "output0"

    @property
    def output_shape(self) -> list[Any]:
        return list(self.outs[0].shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.outs[0]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        return self.outs


@dataclass(frozen=True)
class Params:
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    classes: list[int] | None = None


NAMES = {"0": "circle", "1": "square"}


def test_segment_answer_has_boxes_and_polygons():
    raw = _raw([(16, 16, 16, 16, 1, 0.9, [1.0]), (4, 4, 4, 4, 0, 0.8, [-1.0])])  # the second's mask is empty
    model = Fake([raw[None], np.ones((1, 1, 8, 8), np.float32)], [1, 3, 32, 32])
    meta = {"names": NAMES, "imgsz": 32, "mask_dim": 1}
    tasks.prober("segment", meta, 32, 2)(model)
    answer, seconds = tasks.predict("segment", model, meta, np.zeros((32, 32, 3), np.uint8), Params())
    assert set(seconds) == {"preprocess", "inference", "postprocess"}
    (d,) = answer["detections"]  # dropped: a detection whose mask is empty, as Ultralytics does
    assert d["class_name"] == "square" and np.allclose(d["xyxy"], [8, 8, 24, 24])
    xs = np.asarray(d["polygons"][0])[:, 0]
    assert (xs.min(), xs.max()) == (8.0, 23.0)


def test_pose_answer_has_keypoints_per_detection():
    raw = _raw([(16, 16, 16, 16, 0, 0.9, [10, 12, 0.8, 20, 22, 0.1])])
    model = Fake([raw[None]], [1, 3, 32, 32])
    meta = {"names": NAMES, "imgsz": 32, "kpt_shape": [2, 3]}
    tasks.prober("pose", meta, 32, 2)(model)
    answer, _ = tasks.predict("pose", model, meta, np.zeros((64, 64, 3), np.uint8), Params())
    (d,) = answer["detections"]
    assert np.allclose(d["keypoints"], [[20, 24, 0.8], [40, 44, 0.1]])  # x2: a 64 px image into 32 px


def test_classify_answer_is_top5_with_names():
    probs = np.array([[0.2, 0.8]], np.float32)
    model = Fake([probs], [1, 3, 32, 32])
    meta = {"names": NAMES, "imgsz": 32}
    tasks.prober("classify", meta, 32, 2)(model)
    answer, _ = tasks.predict("classify", model, meta, np.zeros((40, 30, 3), np.uint8), Params())
    assert [(t["class_name"], round(t["confidence"], 3)) for t in answer["top5"]] == [("square", 0.8), ("circle", 0.2)]
    assert (answer["width"], answer["height"]) == (30, 40) and "detections" not in answer


def test_probes_refuse_a_model_of_another_interface():
    meta = {"names": NAMES, "imgsz": 32, "mask_dim": 32, "kpt_shape": [3, 3]}
    detect_like = Fake([np.zeros((1, 6, 21), np.float32)], [1, 3, 32, 32])
    for task in ("segment", "pose", "classify"):
        with pytest.raises(ModelInvalid):
            tasks.prober(task, meta, 32, 2)(detect_like)
    one_output = Fake([np.zeros((1, 4 + 2 + 32, 21), np.float32)], [1, 3, 32, 32])
    with pytest.raises(ModelInvalid, match="second output"):
        tasks.prober("segment", meta, 32, 2)(one_output)
    with pytest.raises(ModelInvalid, match="input shape"):
        tasks.prober("classify", meta, 64, 2)(Fake([np.zeros((1, 2), np.float32)], [1, 3, 32, 32]))


def test_task_meta():
    assert tasks.task_meta({"task": "pose", "kpt_shape": [17, 3]}) == {"kpt_shape": [17, 3]}
    assert tasks.task_meta({"task": "segment", "output": {"mask_coefficients": 32}}) == {"mask_dim": 32}
    with pytest.raises(ValueError, match="kpt_shape"):
        tasks.task_meta({"task": "pose"})
