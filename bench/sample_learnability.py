"""Is the synthetic shapes dataset learnable? Train YOLO11n from scratch on it and print mAP.

200 images (160x128) -> DICE -> local store -> materialize (YOLO detection) -> 30 epochs at
imgsz 128 on CPU, then validate. Prints mAP50, mAP50-95 and times; the baseline for the ratio
is generating + converting the data in-process. Goal: mAP50 >= 0.5. No assertions.

Offline by construction: the model is built from yolo11n.yaml (no weights), YOLO_OFFLINE=1 stops
Ultralytics' online checks and analytics, YOLO_AUTOINSTALL=0 stops it pip-installing, and
plots=False skips the plots that would fetch a font.

    python bench/sample_learnability.py [--epochs 30] [--images 200] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

from vtp_dice.format import Split
from vtp_dice.materialize import DirectorySource, materialize, publish_directory
from vtp_dice.sample import generate


def prepare(work: Path, images: int) -> tuple[Path, float]:
    """Generate, publish and materialize; returns the data.yaml and the seconds it took."""
    start = time.perf_counter()
    root = generate(work / "dataset", images=images, size=(160, 128), seed=0)
    manifest = publish_directory(root, work / "store")
    # Every fifth image to val (80/20), by name: a fixed split without depending on vtp_dice.splits.
    names = sorted(i.file_name for i in manifest.images)
    splits: dict[str, Split] = {n: "val" if k % 5 == 0 else "train" for k, n in enumerate(names)}
    source = DirectorySource(work / "store", manifest.content_hash())
    entry = materialize(source, "detection", work / "cache", splits)
    return entry / "data.yaml", time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vtp-learn-") as tmp:
        work = args.keep or Path(tmp)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics"))  # keep its settings out of $HOME
        data, prep_s = prepare(work, args.images)

        from ultralytics.models import YOLO  # imported late: after the environment above is set

        model = YOLO("yolo11n.yaml")
        start = time.perf_counter()
        model.train(
            data=str(data),
            epochs=args.epochs,
            imgsz=128,
            batch=16,
            device="cpu",
            workers=args.workers,
            seed=0,
            deterministic=True,
            plots=False,
            project=str(work / "runs"),
            name="learn",
            exist_ok=True,
            verbose=False,
        )
        train_s = time.perf_counter() - start
        metrics = model.val(
            data=str(data),
            imgsz=128,
            batch=16,
            device="cpu",
            plots=False,
            split="val",
            project=str(work / "runs"),
            name="val",
            exist_ok=True,
        )
        print(f"images              {args.images} (160x128, 80/20 train/val), epochs {args.epochs}, imgsz 128, CPU")
        print(f"generate+convert    {prep_s:8.2f} s   (baseline)")
        print(f"train               {train_s:8.2f} s   ratio {train_s / prep_s:8.1f}x baseline")
        print(f"val mAP50           {metrics.box.map50:8.3f}     (goal >= 0.5)")
        print(f"val mAP50-95        {metrics.box.map:8.3f}")


if __name__ == "__main__":
    main()
