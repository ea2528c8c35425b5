"""Detections that two equivalent models may legitimately keep differently (near ties).

Two runtimes agreeing to ~1e-4 can still give different NMS answers on a weak model: of two
overlapping candidates with near-equal scores NMS keeps whichever sorts first (and that choice
ripples on to what the kept one suppresses), a score right at the confidence threshold is in on
one side and out on the other, and `max_det` truncates among near-equal scores. A detection
without an exact partner (same class, IoU >= the gate's min IoU) on the other side is *tied*
only when the tolerance explains it: the other side has the same candidate (box IoU >= min IoU,
score within the score tolerance) before NMS, and that candidate is out there because

- its score is within the tolerance of `conf` (threshold), or another class scores within the
  tolerance of it (class flip), or `max_det` cut at a score within the tolerance of it; or
- a kept detection of its class that overlaps it beyond the NMS IoU scores at most the
  tolerance above it (a tie in NMS order), or is itself a tied detection (the ripple).

Everything else stays for the gate's ordinary matching, so a genuine difference still fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NMS_IOU = 0.7
# Boxes are compared in image pixels, clipped to the image: the IoU that NMS saw in input pixels
# can differ slightly for boxes reaching into the letterbox padding.
NMS_IOU_SLACK = 0.05


@dataclass(frozen=True)
class Candidates:
    """One side's pre-NMS candidates: boxes x1, y1, x2, y2 (the detections' pixels) and class scores."""

    boxes: np.ndarray  # [n, 4]
    scores: np.ndarray  # [n, classes]


def candidates(raw: np.ndarray, floor: float, to_image: object = None) -> Candidates:
    """Candidates of one raw output [1, 4 + classes, anchors] whose best score is above `floor`.

    `to_image` maps input-pixel xyxy boxes [n, 4] to the detections' pixels (the platform's
    `scale_boxes`); None keeps input pixels.
    """
    pred = np.asarray(raw[0], dtype=np.float64).T
    pred = pred[pred[:, 4:].max(1) > floor]
    xy, wh = pred[:, :2], pred[:, 2:4]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)
    if to_image is not None and len(boxes):
        boxes = np.asarray(to_image(boxes), dtype=np.float64)  # type: ignore[operator]
    return Candidates(boxes=boxes.reshape(-1, 4), scores=pred[:, 4:])


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:4], boxes[:, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / (area + areas - inter + 1e-9))


def exact_partners(a: np.ndarray, b: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows of `a` and of `b` that have a one-to-one partner: same class, IoU >= min_iou."""
    has_a, has_b = np.zeros(len(a), dtype=bool), np.zeros(len(b), dtype=bool)
    for i in np.argsort(-a[:, 4], kind="stable") if len(a) and len(b) else []:
        ious = iou(a[i, :4], b[:, :4])
        ok = (~has_b) & (b[:, 5] == a[i, 5]) & (ious >= min_iou)
        if ok.any():
            j = int(np.flatnonzero(ok)[np.argmax(ious[ok] - 1e-6 * np.abs(b[ok, 4] - a[i, 4]))])
            has_a[i] = has_b[j] = True
    return has_a, has_b


def _explained(
    row: np.ndarray, other: Candidates, kept: np.ndarray, rippled: np.ndarray, conf: float, tol: float, min_iou: float
) -> bool:
    """Whether the other side's NMS left `row`'s candidate out for a reason within the tolerance."""
    if not len(other.boxes):
        return False
    cls = int(row[5])
    own = other.scores[:, cls]
    same = np.flatnonzero((iou(row[:4], other.boxes) >= min_iou) & (np.abs(own - row[4]) <= tol))
    for c in same:
        score = own[c]
        rest = np.delete(other.scores[c], cls)
        if score <= conf + tol or (rest.size and abs(rest.max() - score) <= tol):
            return True  # at the threshold, or its class nearly tied with another
        if len(kept) >= 300 and score <= kept[:, 4].min() + tol:
            return True  # max_det cut among near-equal scores
        overlap = (kept[:, 5] == cls) & (iou(other.boxes[c], kept[:, :4]) > NMS_IOU - NMS_IOU_SLACK)
        if (overlap & ((kept[:, 4] - score <= tol) | rippled)).any():
            return True  # suppressed by a near-equal score, or by a detection that is itself a tie
    return False


def tied(
    ref: np.ndarray,
    got: np.ndarray,
    cand_ref: Candidates,
    cand_got: Candidates,
    conf: float,
    tol: float,
    min_iou: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows of `ref` and of `got` (x1, y1, x2, y2, score, class) that are tied."""
    ref, got = np.asarray(ref, dtype=np.float64).reshape(-1, 6), np.asarray(got, dtype=np.float64).reshape(-1, 6)
    has_ref, has_got = exact_partners(ref, got, min_iou)
    tie_ref, tie_got = np.zeros(len(ref), dtype=bool), np.zeros(len(got), dtype=bool)
    # A tie ripples (what the other kept suppresses others): repeat until nothing more is explained.
    for _ in range(len(ref) + len(got) + 1):
        new_ref = np.array(
            [
                not has_ref[i] and _explained(ref[i], cand_got, got, tie_got, conf, tol, min_iou)
                for i in range(len(ref))
            ],
            dtype=bool,
        ).reshape(-1)
        new_got = np.array(
            [
                not has_got[j] and _explained(got[j], cand_ref, ref, tie_ref, conf, tol, min_iou)
                for j in range(len(got))
            ],
            dtype=bool,
        ).reshape(-1)
        if (new_ref == tie_ref).all() and (new_got == tie_got).all():
            break
        tie_ref, tie_got = new_ref, new_got
    return tie_ref, tie_got
