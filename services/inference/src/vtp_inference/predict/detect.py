"""Detection pre- and postprocessing, exactly as Ultralytics does it for an exported model.

Square letterbox (grey 114, centred, each side rounded like Ultralytics' LetterBox), RGB,
/255, NCHW; then max class score, threshold, class-aware NMS (greedy, one vectorised IoU per
kept box), boxes back to the original image with per-axis gains, clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_WH = 7680  # class offset of class-aware NMS (Ultralytics' max_wh)
MAX_NMS = 30000  # candidates entering NMS at most (Ultralytics' max_nms)


@dataclass(frozen=True)
class Letterboxed:
    tensor: np.ndarray  # 1 x 3 x size x size float32
    gain: tuple[float, float]  # y, x
    pad: tuple[int, int]  # x, y


def letterbox(image_bgr: np.ndarray, size: int) -> Letterboxed:
    h, w = image_bgr.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    image = image_bgr
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    x = image[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255.0)
    return Letterboxed(np.ascontiguousarray(x), (new_h / h, new_w / w), (left, top))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / (area + areas - inter + 1e-9))


def nms(raw: np.ndarray, conf: float, iou: float, max_det: int, classes: list[int] | None) -> np.ndarray:
    """[4 + classes, anchors] -> rows x1, y1, x2, y2, score, class (input pixels), best first."""
    pred = raw.T
    scores_all = pred[:, 4:]
    cls = scores_all.argmax(1)
    scores = scores_all[np.arange(len(cls)), cls]
    keep = scores > conf
    if classes is not None:
        keep &= np.isin(cls, classes)
    xywh, scores, cls = pred[keep, :4], scores[keep], cls[keep]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    order = np.argsort(-scores, kind="stable")[:MAX_NMS]
    shifted = boxes + (cls[:, None] * MAX_WH)
    chosen: list[int] = []
    while order.size and len(chosen) < max_det:
        i = int(order[0])
        chosen.append(i)
        rest = order[1:]
        order = rest[_iou(shifted[i], shifted[rest]) <= iou]
    idx = np.asarray(chosen, dtype=np.int64)
    return np.concatenate([boxes[idx], scores[idx, None], cls[idx, None].astype(np.float32)], 1).reshape(-1, 6)


def to_image(rows: np.ndarray, boxed: Letterboxed, shape: tuple[int, int]) -> np.ndarray:
    """Boxes of `rows` (input pixels) in the original image's pixels, clipped; a new array."""
    h, w = shape
    gain_y, gain_x = boxed.gain
    pad_x, pad_y = boxed.pad
    boxes = rows[:, :4].astype(np.float64)
    boxes -= np.array([pad_x, pad_y, pad_x, pad_y])
    boxes /= np.array([gain_x, gain_y, gain_x, gain_y])
    return np.clip(boxes, 0, np.array([w, h, w, h], dtype=np.float64))
