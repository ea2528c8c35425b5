"""NMS for outputs that carry more than boxes and class scores (segment's mask coefficients, pose's keypoints).

The output is [4 + classes + extra, anchors]; rows are thresholded on their best class score,
class-aware NMS runs as for detection (`detect.nms`), and each kept row keeps its extra columns.
"""

from __future__ import annotations

import numpy as np

from vtp_inference.predict.detect import nms_keep


def nms_with_extra(
    raw: np.ndarray, nc: int, conf: float, iou: float, max_det: int, classes: list[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(rows x1, y1, x2, y2, score, class in input pixels, best first; the same rows' extra columns)."""
    # Threshold on the output's own layout (a contiguous reduction over classes), then transpose only
    # the candidates: most anchors of a real image score under `conf`.
    keep = raw[4 : 4 + nc].max(0) > conf
    pred = raw[:, keep].T
    cls = pred[:, 4 : 4 + nc].argmax(1)
    scores = pred[np.arange(len(cls)), 4 + cls]
    if classes is not None:
        chosen_classes = np.isin(cls, classes)
        pred, cls, scores = pred[chosen_classes], cls[chosen_classes], scores[chosen_classes]
    xywh, extra = pred[:, :4], pred[:, 4 + nc :]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    idx = nms_keep(boxes, scores, cls, iou, max_det)
    rows = np.concatenate([boxes[idx], scores[idx, None], cls[idx, None].astype(np.float32)], 1).reshape(-1, 6)
    return rows, extra[idx].reshape(len(idx), extra.shape[1])


def points_to_image(
    points: np.ndarray, gain: tuple[float, float], pad: tuple[int, int], shape: tuple[int, int]
) -> np.ndarray:
    """x, y in the last axis' first two columns, input pixels -> the original image's, clipped (a new array)."""
    out = points.astype(np.float64, copy=True)
    out[..., 0] = np.clip((out[..., 0] - pad[0]) / gain[1], 0, shape[1])
    out[..., 1] = np.clip((out[..., 1] - pad[1]) / gain[0], 0, shape[0])
    return out
