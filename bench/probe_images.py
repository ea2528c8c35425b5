"""Throughput of open_archive + probe_all against a plain sha256 pass over the same zip.

Builds 2,000 JPEGs of 640x480 (~50 KB each, ~100 MB) in a stored zip in a temp
dir, then times, in one process:

- baseline: read every image entry from the zip and sha256 it (no decoding);
- open_archive + probe_all with workers = 1, 2, 4.

Prints figures only. Run: python bench/probe_images.py [--images N] [--repeat R]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import os
import random
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from vtp_dice.archive import ArchiveLimits, open_archive
from vtp_dice.images import probe_all
from vtp_dice.manifest import ImageEntry

WIDTH, HEIGHT = 640, 480


def build_zip(path: Path, count: int) -> int:
    """A DICE zip of `count` JPEGs; returns the total image bytes."""
    rng = random.Random(42)
    gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    gradients = [gradient.rotate(angle) for angle in range(0, 360, 30)]
    # One tall noise strip; every image crops a different window of it, so no two images are alike.
    noise = Image.effect_noise((WIDTH, HEIGHT * 8), 30)
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:  # JPEGs do not compress: store, as tools do
        zf.writestr("annotations_classification.json", b'{"format_version": "1.0"}')
        for i in range(count):
            top = rng.randrange(0, HEIGHT * 7)
            bands = (rng.choice(gradients), rng.choice(gradients), noise.crop((0, top, WIDTH, top + HEIGHT)))
            out = io.BytesIO()
            Image.merge("RGB", bands).save(out, "JPEG", quality=85)
            zf.writestr(f"images/{i % 20:02d}/{i:05d}.jpg", out.getvalue())
            total += out.tell()
    return total


def baseline(path: Path) -> None:
    """Read and hash every image entry: the floor any probe pays."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.filename.startswith("images/"):
                hashlib.sha256(zf.read(info)).hexdigest()


def probe(path: Path, workers: int) -> None:
    limits = ArchiveLimits()
    with open_archive(path, limits) as archive:
        results = probe_all(archive, list(archive.images), limits.max_image_pixels, workers=workers)
    bad = [r for r in results.values() if not isinstance(r, ImageEntry)]
    assert not bad, bad[:3]


def best_time(run: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is reported")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zip"
        start = time.perf_counter()
        total = build_zip(path, args.images)
        mb = total / 1e6
        built = time.perf_counter() - start
        print(f"built {args.images} JPEGs {WIDTH}x{HEIGHT}: {mb:.1f} MB, {total / args.images / 1e3:.1f} KB avg")
        print(f"zip {path.stat().st_size / 1e6:.1f} MB built in {built:.1f} s; CPUs available: {cpus}")
        baseline(path)  # warm the page cache so that every case reads from memory
        base = best_time(functools.partial(baseline, path), args.repeat)
        print(f"{'case':<36}{'seconds':>8}{'MB/s':>8}{'images/s':>10}{'vs baseline':>13}{'vs 1 worker':>13}")

        def row(name: str, took: float, one: float) -> None:
            rates = f"{mb / took:>8.1f}{args.images / took:>10.0f}"
            print(f"{name:<36}{took:>8.2f}{rates}{base / took:>13.3f}{one / took:>13.2f}")

        row("baseline: zip read + sha256", base, base)
        one = 0.0
        for workers in (1, 2, 4):
            took = best_time(functools.partial(probe, path, workers), args.repeat)
            one = one or took
            row(f"open_archive + probe_all, workers={workers}", took, one)


if __name__ == "__main__":
    main()
