"""Datasets service end to end, through the gateway, on a local stack started here.

Measures (figures printed; ratios against a baseline taken in this process):

- upload + validation throughput of a ~100 MB DICE zip (2,000 JPEGs of 640x480), in MB/s, against
  the baseline of reading and SHA-256-hashing the same zip from disk;
- peak RSS of the datasets service process while it takes a ~1 GB zip (20,000 images);
- snapshot creation time for that 20,000-image dataset (first call, then the idempotent repeat).

Run: python bench/datasets_service.py [--small N] [--large N]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import psutil
from PIL import Image

from vtp_localstack.ports import isolated_config
from vtp_localstack.stack import LocalStack

W, H = 640, 480


def build_dataset_zip(path: Path, count: int, seed: int = 0) -> int:
    """A classification DICE zip of `count` distinct noisy JPEGs; returns the zip size."""
    rng = random.Random(seed)
    noise = Image.effect_noise((W, H * 8), 30)
    gradient = Image.linear_gradient("L").resize((W, H))
    images = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            top = rng.randrange(0, H * 7)
            bands = (gradient.rotate(rng.randrange(360)), gradient, noise.crop((0, top, W, top + H)))
            out = io.BytesIO()
            Image.merge("RGB", bands).save(out, "JPEG", quality=85)
            name = f"{i % 50:02d}/{i:06d}.jpg"
            zf.writestr(f"images/{name}", out.getvalue())
            cls = i % 3
            images.append(
                {
                    "id": i + 1,
                    "file_name": name,
                    "width": W,
                    "height": H,
                    "depth": 3,
                    "annotations": [
                        {"id": i + 1, "image_id": i + 1, "class_id": cls, "class_name": f"c{cls}", "attributes": {}}
                    ],
                }
            )
        doc = {
            "format_version": "1.0",
            "task_type": "classification",
            "dataset_name": "bench",
            "classes": [{"id": c, "name": f"c{c}"} for c in range(3)],
            "images": images,
        }
        zf.writestr("annotations_classification.json", json.dumps(doc))
    return path.stat().st_size


def sha_baseline(path: Path) -> float:
    start = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return time.perf_counter() - start


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)


def upload(api: httpx.Client, path: Path, name: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    with open(path, "rb") as f:
        response = api.post("/api/v1/datasets", data={"name": name}, files={"file": ("d.zip", f, "application/zip")})
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response.json()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small, large = root / "small.zip", root / "large.zip"
        small_bytes = build_dataset_zip(small, args.small, 1)
        large_bytes = build_dataset_zip(large, args.large, 2)
        cfg = isolated_config(root / "run")
        stack = LocalStack(cfg)
        stack.up(services=("identity", "datasets"))
        try:
            token = (cfg.run_path / "admin-token").read_text().strip()
            api = httpx.Client(base_url=cfg.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
            base = sha_baseline(small)
            took, _ = upload(api, small, "small")
            mb = small_bytes / 1e6
            print(
                f"upload+validation {args.small} JPEGs, {mb:.1f} MB: {took:.2f} s = {mb / took:.1f} MB/s "
                f"(baseline read+sha256 {mb / base:.0f} MB/s; ratio {base / took:.3f})"
            )
            datasets = next(c for c in stack.components() if c.name == "datasets")
            assert datasets.pid is not None
            idle = psutil.Process(datasets.pid).memory_info().rss
            monitor = PeakRss(datasets.pid)
            monitor.start()
            took, body = upload(api, large, "large")
            monitor.stop.set()
            monitor.join()
            gb = large_bytes / 1e9
            print(
                f"upload+validation {args.large} JPEGs, {gb:.2f} GB: {took:.1f} s = {gb * 1e3 / took:.1f} MB/s;"
                f" datasets RSS idle {idle / 2**20:.0f} MiB, peak {monitor.peak / 2**20:.0f} MiB"
            )
            url = f"/api/v1/datasets/{body['id']}/snapshots"
            start = time.perf_counter()
            first = api.post(url)
            t_first = time.perf_counter() - start
            start = time.perf_counter()
            again = api.post(url)
            t_again = time.perf_counter() - start
            print(
                f"snapshot of {args.large} images: {t_first:.2f} s (status {first.status_code}); "
                f"repeat {t_again:.2f} s (status {again.status_code}, same snapshot {first.json() == again.json()})"
            )
        finally:
            stack.down()


if __name__ == "__main__":
    main()
