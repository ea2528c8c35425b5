"""Untrusted image decoding: limits checked before decoding, EXIF orientation applied."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vtp_inference.predict.images import ImageRejected, Limits, decode

LIMITS = Limits(max_bytes=1 << 20, max_pixels=1_000_000)


def _encoded(fmt: str, size: tuple[int, int] = (40, 20), orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 10, 10))
    exif = image.getexif()
    if orientation:
        exif[0x0112] = orientation
    image.save(out, fmt, exif=exif.tobytes()) if fmt == "JPEG" else image.save(out, fmt)
    return out.getvalue()


def test_decodes_bgr_with_exif_orientation():
    assert decode(_encoded("PNG"), LIMITS).shape == (20, 40, 3)
    assert decode(_encoded("JPEG", orientation=6), LIMITS).shape == (40, 20, 3)  # rotated 90 degrees
    assert decode(_encoded("PNG"), LIMITS)[0, 0].tolist() == [10, 10, 200]  # BGR


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "image_empty"),
        (b"\x00" * 100, "image_undecodable"),
        (_encoded("PNG")[:60], "image_undecodable"),
        (_encoded("GIF"), "image_unsupported"),
        (b"\xff" * ((1 << 20) + 1), "image_too_large"),
    ],
)
def test_refusals(data: bytes, code: str):
    with pytest.raises(ImageRejected) as caught:
        decode(data, LIMITS)
    assert caught.value.code == code


def test_decompression_bomb_refused_from_its_header():
    out = io.BytesIO()
    Image.fromarray(np.zeros((2000, 2000), dtype=bool)).save(out, "PNG")
    assert len(out.getvalue()) < 50_000
    with pytest.raises(ImageRejected) as caught:
        decode(out.getvalue(), LIMITS)
    assert caught.value.code == "image_too_many_pixels"
