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


def masks(protos: np.ndarray, coefs: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Binary masks (n, size, size) uint8 from prototypes (c, h, w), coefficients (n, c), boxes (n, 4) in input px.

    One matrix product gives every mask's logits; each is upsampled and thresholded straight into its
    slot (one `cv2.resize` call per mask: measured 4x faster than resizing all masks as channels of
    one image and transposing, which moves 4 bytes per pixel twice); the crop is two in-place
    separable ANDs (rows, then columns) over all masks at once.
    """
    c, mh, mw = protos.shape
    n = len(coefs)
    logits = (coefs.astype(np.float32) @ protos.reshape(c, -1).astype(np.float32)).reshape(n, mh, mw)
    binary = np.empty((n, size, size), bool)
    for k in range(n):
        binary[k] = cv2.resize(logits[k], (size, size)) > 0
    r = np.arange(size, dtype=np.float32)[None, :]
    binary &= ((r >= boxes[:, 1:2]) & (r < boxes[:, 3:4]))[:, :, None]  # rows y1 <= row < y2
    binary &= ((r >= boxes[:, 0:1]) & (r < boxes[:, 2:3]))[:, None, :]  # columns x1 <= col < x2
    return binary.view(np.uint8)


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
