"""Letterbox, NMS and box scaling: what Ultralytics does, on hand-made tensors."""

from __future__ import annotations

import numpy as np

from vtp_inference.predict.detect import letterbox, nms, to_image


def _raw(rows: list[tuple[float, float, float, float, int, float]], classes: int = 3) -> np.ndarray:
    """[4 + classes, anchors] from (cx, cy, w, h, class, score) rows."""
    out = np.zeros((4 + classes, len(rows)), np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(rows):
        out[:4, i] = (cx, cy, w, h)
        out[4 + c, i] = s
    return out


def test_letterbox_pads_centred_and_scales_to_unit_rgb():
    image = np.zeros((48, 96, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    boxed = letterbox(image, 64)
    assert boxed.tensor.shape == (1, 3, 64, 64) and boxed.tensor.dtype == np.float32
    assert boxed.pad == (0, 16) and boxed.gain == (32 / 48, 64 / 96)
    assert boxed.tensor[0, 0, 32, 32] == 1.0 and boxed.tensor[0, 2, 32, 32] == 0.0  # RGB
    assert np.isclose(boxed.tensor[0, 0, 0, 0], 114 / 255)  # grey padding


def test_nms_is_class_aware_threshold_and_max_det():
    raw = _raw([
        (20, 20, 10, 10, 0, 0.9),
        (21, 20, 10, 10, 0, 0.8),  # overlaps the first, same class: suppressed
        (21, 20, 10, 10, 1, 0.7),  # same place, other class: kept
        (50, 50, 10, 10, 2, 0.1),  # under the threshold
    ])  # fmt: skip
    rows = nms(raw, conf=0.25, iou=0.7, max_det=300, classes=None)
    assert rows[:, 5].tolist() == [0, 1] and np.allclose(rows[:, 4], [0.9, 0.7])
    assert np.allclose(rows[0, :4], [15, 15, 25, 25])
    assert len(nms(raw, 0.25, 0.7, 1, None)) == 1
    assert nms(raw, 0.25, 0.7, 300, [1])[:, 5].tolist() == [1]
    assert nms(raw, 0.95, 0.7, 300, None).shape == (0, 6)


def test_boxes_back_to_the_original_image_clipped():
    boxed = letterbox(np.zeros((48, 96, 3), np.uint8), 64)
    rows = np.array([[0, 16, 64, 48, 0.9, 0], [-10, 0, 10, 20, 0.5, 1]], np.float32)
    boxes = to_image(rows, boxed, (48, 96))
    assert np.allclose(boxes[0], [0, 0, 96, 48]) and np.allclose(boxes[1], [0, 0, 15, 6])


def test_nms_offsets_classes_in_float32_as_ultralytics():
    # C and A of class 2 overlap at IoU 0.7 to 3e-6; class 2's offset (15360 px) in float32 rounds
    # the coordinates and puts the IoU above 0.7 (Ultralytics suppresses A and keeps B, A's twin
    # 0.03 px to the right); offset in float64 the IoU stayed under it, A was kept and B suppressed.
    dx = 10.588354
    below_half = float(np.float32(0.5) - np.float32(1.2e-7))
    raw = _raw([(100, 100, 60, 40, 2, 0.9), (100 + dx, 100, 60, 40, 2, 0.5), (100.03 + dx, 100, 60, 40, 2, below_half)])
    rows = nms(raw, conf=0.25, iou=0.7, max_det=300, classes=None)
    assert rows[:, 4].tolist() == [raw[6, 0], raw[6, 2]]
    assert rows[1, 0] == raw[0, 2] - raw[2, 2] / 2  # B's own box, to the bit


def test_to_tensor_is_bit_for_bit_the_strided_conversion() -> None:
    from vtp_inference.predict.detect import to_tensor

    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for bgr in (True, False):
        view = image[..., ::-1] if bgr else image
        expected = np.ascontiguousarray(view.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255.0))
        tensor = to_tensor(image, bgr=bgr)
        assert tensor.dtype == np.float32 and tensor.flags["C_CONTIGUOUS"]
        assert np.array_equal(tensor, expected)
