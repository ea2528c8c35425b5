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
    return Letterboxed(to_tensor(image, bgr=True), (new_h / h, new_w / w), (left, top))


def to_tensor(image: np.ndarray, *, bgr: bool) -> np.ndarray:
    """HWC uint8 -> 1 x 3 x H x W float32 RGB in [0, 1], bit for bit `x.astype(float32) * float32(1/255)`.

    One contiguous pass per channel into a preallocated tensor: converting the strided
    (channel-flipped, transposed) view in one `astype` was 7x slower (about 5 ms at 640 px).
    """
    h, w = image.shape[:2]
    tensor = np.empty((1, 3, h, w), np.float32)
    scale = np.float32(1 / 255.0)
    for c in range(3):
        np.multiply(image[..., 2 - c if bgr else c], scale, out=tensor[0, c], dtype=np.float32)
    return tensor


def nms_keep(boxes: np.ndarray, scores: np.ndarray, cls: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Indices kept by class-aware greedy NMS, best first, step by step as Ultralytics' (torchvision) NMS.

    All in float32 as there: the class offset (cls * MAX_WH) rounds the coordinates (to 1/1024 px
    for class 1), and an IoU within ~1e-5 of the threshold lands on the side that rounding gives;
    done in float64, another of two near-identical boxes could survive. Stable descending order;
    a box is suppressed when its IoU with a kept one is above `iou` (an empty box never is).
    """
    shifted = boxes.astype(np.float32) + (cls[:, None] * MAX_WH).astype(np.float32)
    x1, y1, x2, y2 = (np.ascontiguousarray(c) for c in shifted.T)
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")[:MAX_NMS]
    zero = np.float32(0)
    chosen: list[int] = []
    while order.size and len(chosen) < max_det:
        i = int(order[0])
        chosen.append(i)
        rest = order[1:]
        w = np.maximum(zero, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(zero, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(overlap.astype(np.float64) > iou)]
    return np.asarray(chosen, dtype=np.int64)


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
    idx = nms_keep(boxes, scores, cls, iou, max_det)
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
