"""Probing images: sniffed formats, pixel limits before decoding, real decoding, EXIF orientation."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from vtp_dice.archive import open_archive
from vtp_dice.format import Problem
from vtp_dice.images import probe_all, probe_image, sniff_format
from vtp_dice.manifest import ImageEntry

MAX = 100_000_000


def encode(fmt: str, size: tuple[int, int] = (64, 48), **params: object) -> bytes:
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def probe(name: str, data: bytes, max_pixels: int = MAX) -> ImageEntry | Problem:
    return probe_image(name, io.BytesIO(data), max_pixels)


def problem_of(result: ImageEntry | Problem | None) -> Problem:
    assert isinstance(result, Problem), result
    return result


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a size and that holds no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_accepted_formats(fmt: str) -> None:
    data = encode(fmt)
    entry = probe(f"a/img.{fmt.lower()}", data)
    assert entry == ImageEntry(f"a/img.{fmt.lower()}", hashlib.sha256(data).hexdigest(), len(data), 64, 48, fmt)


def test_format_is_sniffed_not_taken_from_the_extension() -> None:
    entry = probe("photo.jpg", encode("PNG"))
    assert isinstance(entry, ImageEntry) and entry.format == "PNG"


def test_unsupported_image_format() -> None:
    problem = problem_of(probe("page.jpg", b"<!doctype html><html><body>hi</body></html>"))
    assert problem.code == "unsupported_image_format" and problem.file == "images/page.jpg"
    assert sniff_format(b"") is None


def test_truncated_jpeg_is_undecodable() -> None:
    data = encode("JPEG", (256, 256), quality=90)
    problem = problem_of(probe("cut.jpg", data[: len(data) // 2]))
    assert problem.code == "image_undecodable" and problem.file == "images/cut.jpg"


def test_corrupt_png_is_undecodable() -> None:
    problem = problem_of(probe("hdr.png", png_header_only(10, 10)))  # a valid header, but no pixel data
    assert problem.code == "image_undecodable"


def test_too_many_pixels_is_checked_from_the_header_before_decoding() -> None:
    # No pixel data at all: a decode would fail, so the answer can only come from the header.
    problem = problem_of(probe("huge.png", png_header_only(20_000, 20_000), max_pixels=1_000_000))
    assert problem.code == "image_too_many_pixels" and problem.file == "images/huge.png"
    # Far past Pillow's own global bomb limit: still our code, not a DecompressionBombError.
    problem = problem_of(probe("huger.png", png_header_only(100_000, 100_000)))
    assert problem.code == "image_too_many_pixels"
    assert Image.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3  # global state untouched


def test_exif_orientation_swaps_width_and_height() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    entry = probe("rot.jpg", encode("JPEG", (64, 32), exif=exif.tobytes()))
    assert isinstance(entry, ImageEntry) and (entry.width, entry.height) == (32, 64)
    exif[0x0112] = 3  # 180 degrees: no swap
    entry = probe("rot.jpg", encode("JPEG", (64, 32), exif=exif.tobytes()))
    assert isinstance(entry, ImageEntry) and (entry.width, entry.height) == (64, 32)


def test_probe_all_threads_match_sequential(tmp_path: Path) -> None:
    path = tmp_path / "ds.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("annotations_classification.json", b"{}")
        for i in range(20):
            zf.writestr(f"images/{i}.jpg", encode("JPEG", (32 + i, 32)))
        zf.writestr("images/bad.jpg", b"not an image")
    names = [f"{i}.jpg" for i in range(20)] + ["bad.jpg", "missing.jpg", "0.jpg"]
    with open_archive(path) as archive:
        sequential = probe_all(archive, names, MAX, workers=1)
        threaded = probe_all(archive, names, MAX, workers=4)
    assert sequential == threaded and len(threaded) == 22
    assert isinstance(threaded["7.jpg"], ImageEntry) and threaded["7.jpg"].width == 39
    assert problem_of(threaded["bad.jpg"]).code == "unsupported_image_format"
    assert problem_of(threaded["missing.jpg"]).code == "image_file_missing"


def test_probe_all_reports_a_corrupt_entry(tmp_path: Path) -> None:
    path = tmp_path / "crc.zip"
    data = encode("PNG")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("annotations.json", b"{}")
        zf.writestr("images/a.png", data)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(data[-20:], bytes(20)))  # damage the stored bytes, not the CRC
    with open_archive(path) as archive:
        result = probe_all(archive, ["a.png"], MAX, workers=2)
    assert problem_of(result["a.png"]) == Problem("corrupt_entry", problem_of(result["a.png"]).message, "images/a.png")
