"""Pose postprocessing: each kept row's keypoints (x, y, visibility score) in the original image's pixels."""

from __future__ import annotations

import numpy as np

from vtp_inference.predict.detect import Letterboxed
from vtp_inference.predict.instances import points_to_image


def keypoints(extra: np.ndarray, kpt_shape: list[int], boxed: Letterboxed, shape: tuple[int, int]) -> np.ndarray:
    """(n, keypoints, 2 or 3): x, y scaled like boxes and clipped to the image; the score as the model gives it."""
    kpts = extra.reshape(len(extra), *kpt_shape)
    return points_to_image(kpts, boxed.gain, boxed.pad, shape)
