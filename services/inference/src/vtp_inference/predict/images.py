"""Decoding untrusted images: size limits before decoding, EXIF orientation applied.

The pixel count is read from the header (Pillow, nothing decoded) so a decompression bomb is
refused before OpenCV allocates it; decoding is OpenCV's `imdecode`, as Ultralytics does, which
applies the EXIF orientation.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

SUPPORTED = frozenset({"JPEG", "PNG", "BMP", "WEBP", "TIFF"})


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int


class ImageRejected(Exception):
    """One image of a request cannot be used; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def decode(data: bytes, limits: Limits) -> np.ndarray:
    """BGR uint8 H x W x 3, oriented as its EXIF says."""
    if not data:
        raise ImageRejected("image_empty", "the image has no bytes")
    if len(data) > limits.max_bytes:
        raise ImageRejected("image_too_large", f"{len(data)} bytes; at most {limits.max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            header = Image.open(io.BytesIO(data))
            width, height, fmt = header.width, header.height, header.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected("image_undecodable", f"not a readable image: {exc}") from exc
    except Exception as exc:  # a plugin's own failure (e.g. an optional HEIF opener) is still "unreadable"
        raise ImageRejected("image_undecodable", f"not a readable image: {type(exc).__name__}") from exc
    if fmt not in SUPPORTED:
        raise ImageRejected("image_unsupported", f"{fmt} images are not supported ({', '.join(sorted(SUPPORTED))})")
    if width * height > limits.max_pixels:
        raise ImageRejected("image_too_many_pixels", f"{width}x{height} pixels; at most {limits.max_pixels}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ImageRejected("image_undecodable", f"the {fmt} data cannot be decoded")
    return image
