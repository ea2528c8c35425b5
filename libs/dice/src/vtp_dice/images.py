"""Probing image entries: content hash, real format, pixel count, proof that the bytes decode.

The format is sniffed from magic bytes, never taken from the extension, and the
header size is checked before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO

from PIL import (
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from vtp_dice.archive import READ_ERRORS, DiceArchive
from vtp_dice.format import DatasetRejected, Problem, normalize_file_name
from vtp_dice.manifest import ImageEntry

# The plugin classes are constructed directly instead of through Image.open: the
# format is already known, and Image.open's decompression-bomb check reads the
# process-global Image.MAX_IMAGE_PIXELS, which we neither trust nor want to mutate
# from worker threads. Constructing an ImageFile parses the header only.
_OPENERS: dict[str, type[ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # transposed or rotated by 90 degrees
# Called on the probing thread with each good image and its bytes (read once, so a caller can keep them).
OnImage = Callable[[ImageEntry, bytes], None]


def sniff_format(head: bytes) -> str | None:
    """The image format from the first bytes of a file, or None when it is not one we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in _TIFF_MAGIC:
        return "TIFF"
    return None


def probe_image(
    file_name: str, stream: IO[bytes], max_pixels: int, on_image: OnImage | None = None
) -> ImageEntry | Problem:
    """Read an image once; its entry (size after EXIF orientation) or the problem with it."""
    try:
        data = stream.read()  # one image in memory; the archive stream caps how much
    except DatasetRejected as exc:
        return exc.problems[0]
    except READ_ERRORS as exc:
        return Problem("corrupt_entry", f"cannot read image: {exc}", f"images/{file_name}")
    result = probe_bytes(file_name, data, max_pixels)
    if on_image is not None and isinstance(result, ImageEntry):
        on_image(result, data)
    return result


def probe_bytes(file_name: str, data: bytes, max_pixels: int) -> ImageEntry | Problem:
    """An image's entry from its bytes, or the problem with them."""
    file = f"images/{file_name}"
    fmt = sniff_format(data[:16])
    if fmt is None:
        return Problem("unsupported_image_format", "not a JPEG, PNG, WEBP, BMP, GIF or TIFF file", file)
    try:
        with _OPENERS[fmt](io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                return _too_many_pixels(width * height, max_pixels, file)
            if width <= 0 or height <= 0:
                return Problem("image_undecodable", f"invalid size {width}x{height}", file)
            if isinstance(img, JpegImagePlugin.JpegImageFile):
                # Decode at 1/8 scale: libjpeg still entropy-decodes every block of
                # every scan (so truncation and corrupt data are still caught) but
                # skips most of the IDCT and colour work. draft() shrinks img.size,
                # so the real size was taken above.
                img.draft(None, (max(1, width // 8), max(1, height // 8)))
            img.load()
            orientation = _orientation(img)
    except Image.DecompressionBombError:
        # Pillow's own guard (a GIF frame or TIFF tile larger than the header said).
        return _too_many_pixels(None, max_pixels, file)
    except Exception as exc:  # hostile bytes make Pillow raise nearly anything: all mean "not an image"
        return Problem("image_undecodable", f"cannot decode {fmt} image: {exc}", file)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return ImageEntry(file_name, hashlib.sha256(data).hexdigest(), len(data), width, height, fmt)


def _too_many_pixels(pixels: int | None, max_pixels: int, file: str) -> Problem:
    found = f"{pixels} pixels" if pixels is not None else "too many pixels"
    return Problem("image_too_many_pixels", f"{found}, at most {max_pixels} allowed", file)


def _orientation(img: Image.Image) -> int:
    """EXIF orientation; a broken EXIF block counts as none, as Pillow's exif_transpose would skip it."""
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) else 1


def probe_all(
    archive: DiceArchive, names: Iterable[str], max_pixels: int, workers: int = 4, on_image: OnImage | None = None
) -> dict[str, ImageEntry | Problem]:
    """Probe images by file_name, concurrently: Pillow, zlib and hashlib release the GIL.

    `on_image` sees every good image's bytes on the worker that read them (e.g. to stage them for storing).
    """
    unique = list(dict.fromkeys(names))
    if workers <= 1:
        return {name: _probe_one(archive, None, name, max_pixels, on_image) for name in unique}
    # A ZipFile handle is not safe for concurrent reads: one handle per worker thread.
    local = threading.local()
    handles: list[zipfile.ZipFile] = []
    lock = threading.Lock()

    def task(name: str) -> ImageEntry | Problem:
        handle: zipfile.ZipFile | None = getattr(local, "handle", None)
        if handle is None:
            handle = local.handle = archive.new_handle()
            with lock:
                handles.append(handle)
        return _probe_one(archive, handle, name, max_pixels, on_image)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe-image") as pool:
            results = list(pool.map(task, unique))
    finally:
        for handle in handles:
            handle.close()
    return dict(zip(unique, results, strict=True))


def _probe_one(
    archive: DiceArchive, handle: zipfile.ZipFile | None, name: str, max_pixels: int, on_image: OnImage | None
) -> ImageEntry | Problem:
    file_name = normalize_file_name(name)
    if file_name is None or file_name not in archive.images:
        return Problem("image_file_missing", "no such file in the archive's images/ folder", f"images/{name}")
    try:
        stream = archive.open_image(file_name, handle)
    except DatasetRejected as exc:
        return exc.problems[0]
    with stream:
        return probe_image(file_name, stream, max_pixels, on_image)
