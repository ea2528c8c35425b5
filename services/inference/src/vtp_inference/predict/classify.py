"""Classification pre- and postprocessing, as Ultralytics does it for an exported model.

Not a letterbox: the shortest side is resized to the input size with Pillow's bilinear filter
(antialiased, as torchvision's Resize on a PIL image), then the centre is cropped; RGB, /255,
NCHW. The model's output is already softmax probabilities.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from vtp_inference.predict.detect import to_tensor


def preprocess(image_bgr: np.ndarray, size: int) -> np.ndarray:
    """1 x 3 x size x size float32."""
    rgb = Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    w, h = rgb.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)  # torchvision truncates the long side
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_w, new_h) != (w, h):
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)
    crop = np.asarray(rgb)[top : top + size, left : left + size]
    return to_tensor(crop, bgr=False)


def top_k(probs: np.ndarray, k: int = 5, classes: list[int] | None = None) -> list[tuple[int, float]]:
    """The k most probable classes (among `classes` when given), best first."""
    p = probs.astype(np.float64).ravel()
    candidates = np.arange(len(p)) if classes is None else np.asarray(classes, dtype=np.int64)
    order = candidates[np.argsort(-p[candidates], kind="stable")][:k]
    return [(int(c), float(p[c])) for c in order]
