"""An uploaded zip of images for a batch: read safely (vtp_dice), every image checked like a predict.

The archive's central directory is checked before anything is decompressed (entry names, sizes,
ratios: `vtp_dice.archive`); each image is then read through a capped reader and its header checked
(format, bytes, pixels) as the predict API does, so a batch never starts on input it cannot use.
Files that are not images (by extension) are ignored.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vtp_dice.archive import ArchiveLimits, open_archive
from vtp_dice.format import DatasetRejected
from vtp_inference.domain.model import Problem
from vtp_inference.predict.images import SUPPORTED, Limits

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ZipInput:
    files: list[str]  # image entries (relative to the archive's root), in the batch's order
    problems: list[Problem]


def check_zip(path: Path, archive_limits: ArchiveLimits, image_limits: Limits, max_images: int) -> ZipInput:
    """The batch's images, or every problem found (capped at the archive limits' `max_problems`)."""
    try:
        archive = open_archive(path, archive_limits, require_annotations=False)
    except DatasetRejected as exc:
        return ZipInput([], [Problem(_pointer(p.file), p.code, p.message) for p in exc.problems])
    with archive:
        files = sorted(n for n in archive.entries if n.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            return ZipInput(
                [], [Problem("/file", "no_images", "the archive holds no images (jpg, png, bmp, webp, tif)")]
            )
        if len(files) > max_images:
            return ZipInput([], [Problem("/file", "too_many_images", f"{len(files)} images; at most {max_images}")])
        problems: list[Problem] = []
        for name in files:
            if len(problems) >= archive_limits.max_problems:
                break
            try:
                data = archive.read_entry(name, image_limits.max_bytes, "image_too_large")
            except DatasetRejected as exc:
                problems += [Problem(_pointer(name), p.code, p.message) for p in exc.problems]
                continue
            found = _image_problem(data, image_limits)
            if found is not None:
                problems.append(Problem(_pointer(name), *found))
    return ZipInput(files, problems)


def _image_problem(data: bytes, limits: Limits) -> tuple[str, str] | None:
    """The header check of `predict.images.decode` (nothing decoded)."""
    if not data:
        return "image_empty", "the image has no bytes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            header = Image.open(io.BytesIO(data))
            width, height, fmt = header.width, header.height, header.format
    except Exception as exc:  # hostile headers raise many kinds of errors; all mean "unreadable"
        return "image_undecodable", f"not a readable image: {type(exc).__name__}"
    if fmt not in SUPPORTED:
        return "image_unsupported", f"{fmt} images are not supported ({', '.join(sorted(SUPPORTED))})"
    if width * height > limits.max_pixels:
        return "image_too_many_pixels", f"{width}x{height} pixels; at most {limits.max_pixels}"
    return None


def _pointer(file: str | None) -> str:
    return f"/file/{file}" if file else "/file"
