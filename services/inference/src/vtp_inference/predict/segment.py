"""Segmentation postprocessing, as Ultralytics does it for an exported model (`process_mask`, `masks2segments`).

Each kept row's mask coefficients times the prototypes, upsampled bilinearly to the input size,
thresholded at 0 and cropped to the row's box (input pixels); rows whose mask is empty are
dropped (as Ultralytics' predictor does); polygons are the masks' outer contours (OpenCV), in
the original image's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from vtp_inference.predict.detect import Letterboxed
from vtp_inference.predict.instances import points_to_image

CV_MAX_CHANNELS = 512  # cv2.resize takes at most this many channels at once


def masks(protos: np.ndarray, coefs: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Binary masks (n, size, size) uint8 from prototypes (c, h, w), coefficients (n, c), boxes (n, 4) in input px."""
    c, mh, mw = protos.shape
    n = len(coefs)
    if n == 0:
        return np.zeros((0, size, size), np.uint8)
    logits = (coefs.astype(np.float32) @ protos.reshape(c, -1).astype(np.float32)).reshape(n, mh, mw)
    chunks = [
        cv2.resize(np.ascontiguousarray(logits[k : k + CV_MAX_CHANNELS].transpose(1, 2, 0)), (size, size))
        for k in range(0, n, CV_MAX_CHANNELS)
    ]
    full = np.concatenate([ch.reshape(size, size, -1) for ch in chunks], 2).transpose(2, 0, 1)
    r = np.arange(size, dtype=np.float32)
    inside_x = (r[None, :] >= boxes[:, 0:1]) & (r[None, :] < boxes[:, 2:3])
    inside_y = (r[None, :] >= boxes[:, 1:2]) & (r[None, :] < boxes[:, 3:4])
    return ((full > 0) & inside_y[:, :, None] & inside_x[:, None, :]).astype(np.uint8)


def polygons(binary: np.ndarray, boxed: Letterboxed, shape: tuple[int, int]) -> list[list[list[list[float]]]]:
    """Per mask, its outer contours as [[x, y], ...] in the original image's pixels.

    One findContours per mask (OpenCV has no batched form); the points of every contour are
    scaled in one vectorised step.
    """
    contours = [
        [c.reshape(-1, 2) for c in cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]] for m in binary
    ]
    flat = [c for per_mask in contours for c in per_mask]
    if not flat:
        return [[] for _ in contours]
    scaled = points_to_image(np.concatenate(flat).astype(np.float64), boxed.gain, boxed.pad, shape)
    pieces = np.split(scaled, np.cumsum([len(c) for c in flat])[:-1])
    out: list[list[list[list[float]]]] = []
    k = 0
    for per_mask in contours:
        out.append([pieces[k + j].tolist() for j in range(len(per_mask))])
        k += len(per_mask)
    return out
