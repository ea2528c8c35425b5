"""How long does a trainer wait for its data? materialize() cold and warm, YOLO detection.

A 2,000-image sample dataset at 640x480 is published to a local directory store
(`DirectorySource`, standing in for the object store) and materialized into an empty cache
(cold: fetch and verify every blob, write labels, hard-link images), then again (warm: the
entry exists). Goal: warm < 0.5 s. The baseline for the ratios is copying the same image files
once with shutil (what any layout builder must at least do). No assertions.

    python bench/materialize_yolo.py [--images 2000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from vtp_dice.format import Split
from vtp_dice.manifest import blob_key
from vtp_dice.materialize import DirectorySource, materialize, publish_directory
from vtp_dice.sample import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vtp-mat-") as tmp:
        work = args.keep or Path(tmp)
        start = time.perf_counter()
        root = generate(work / "dataset", images=args.images, size=(640, 480), seed=0, tasks=("detection",))
        gen_s = time.perf_counter() - start
        manifest = publish_directory(root, work / "store")
        names = sorted(i.file_name for i in manifest.images)
        splits: dict[str, Split] = {n: "val" if k % 5 == 0 else "train" for k, n in enumerate(names)}
        source = DirectorySource(work / "store", manifest.content_hash())

        start = time.perf_counter()  # baseline: copy every image once
        (work / "copy").mkdir()
        for image in manifest.images:
            shutil.copyfile(work / "store" / blob_key(image.sha256), work / "copy" / image.sha256)
        copy_s = time.perf_counter() - start

        start = time.perf_counter()
        entry = materialize(source, "detection", work / "cache", splits)
        cold_s = time.perf_counter() - start
        warm = []
        for _ in range(5):
            start = time.perf_counter()
            materialize(DirectorySource(work / "store", manifest.content_hash()), "detection", work / "cache", splits)
            warm.append(time.perf_counter() - start)
        warm_s = sorted(warm)[len(warm) // 2]
        size_mb = manifest.size_bytes / 1e6
        print(f"dataset             {args.images} images 640x480 JPEG, {size_mb:.0f} MB (generated in {gen_s:.1f} s)")
        print(f"baseline copy       {copy_s:8.3f} s")
        print(f"materialize cold    {cold_s:8.3f} s   ratio {cold_s / copy_s:6.2f}x baseline -> {entry}")
        print(f"materialize warm    {warm_s * 1e3:8.3f} ms  (median of 5; goal < 500 ms)")
        print(f"warm / cold         {warm_s / cold_s:8.5f}")


if __name__ == "__main__":
    main()
