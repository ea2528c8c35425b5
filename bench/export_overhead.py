"""Export overhead and parity: an ONNX export through the platform against a bare `yolo export`.

A local stack (identity, datasets, jobs, trainer-runner, export) is started here on free ports; a
small shapes dataset is uploaded, a short job trained (yolo11n detect, CPU). Then:

- (a) ONNX through the platform: wall time `POST /api/v1/exports` -> `succeeded` (polled), less the
  parity stage's own time (the export's `parity_raw_seconds` + `parity_metric_seconds`), against a
  bare `YOLO(best.pt).export(format="onnx")` of the same checkpoint in a fresh interpreter (its whole
  wall time, interpreter start included). Goal <= 1.2. Packaging (package, predictor check) and the
  upload stay in the platform's time.
- (b) for each default format: the parity stage's time and the parity numbers (raw outputs, matched
  boxes, mAP50-95 delta), printed as the table of docs/exports.md.

Offline: models from yaml, YOLO_OFFLINE=1, YOLO_AUTOINSTALL=0.

    python bench/export_overhead.py [--epochs 3] [--images 60] [--imgsz 64]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import platform_steps as steps

FORMATS = ("onnx", "torchscript", "openvino", "ncnn")


def _bare_export(store_root: Path, uri: str, imgsz: int, work: Path) -> float:
    """The same checkpoint exported by a fresh interpreter; its wall time."""
    weights = work / "best.pt"
    weights.write_bytes((store_root / uri.split("://", 1)[1]).read_bytes())  # local store: <root>/<bucket>/<key>
    code = f"from ultralytics import YOLO; YOLO({str(weights)!r}).export(format='onnx', imgsz={imgsz}, device='cpu')"
    env = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "PATH": "/usr/bin:/bin"}
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", code], cwd=work, env=env, check=True, capture_output=True)
    return time.monotonic() - began


def _export(api: httpx.Client, job_id: str, fmt: str, options: dict[str, Any]) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    created = api.post("/api/v1/exports", json={"job_id": job_id, "format": fmt, "options": options})
    created.raise_for_status()
    done = steps.wait(api, f"/api/v1/exports/{created.json()['id']}", lambda e: e["status"] in ("succeeded", "failed"))
    return done, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--imgsz", type=int, default=64)
    args = parser.parse_args()

    from vtp_localstack.ports import isolated_config
    from vtp_localstack.stack import LocalStack

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = isolated_config(root / "run")
        stack = LocalStack(cfg)
        try:
            stack.up(services=("identity", "datasets", "jobs", "trainer-runner", "export"))
            token = (cfg.run_path / "admin-token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=cfg.gateway_url, headers=headers, timeout=60) as api:
                job = steps.train_detect(api, root, images=args.images, epochs=args.epochs, imgsz=args.imgsz)
                bare = _bare_export(
                    cfg.run_path / "data" / "objects", job["checkpoints"]["best"]["uri"], args.imgsz, root
                )
                rows = []
                for fmt in FORMATS:
                    export, wall = _export(api, job["id"], fmt, {})
                    rows.append((fmt, export, wall))
                # The same ONNX request again would answer the existing export: a new option set is a new export.
                onnx, wall = _export(api, job["id"], "onnx", {"opset": 17})
        finally:
            stack.down()

    t = onnx["timings"]
    parity = t.get("parity_raw_seconds", 0) + t.get("parity_metric_seconds", 0)
    print(f"(a) ONNX request -> succeeded {wall:.1f} s, parity stage {parity:.1f} s, without it {wall - parity:.1f} s")
    print(f"    bare `yolo export` in a fresh process {bare:.1f} s; ratio {(wall - parity) / bare:.2f} (goal <= 1.2)")
    print(f"    phases: { {k: v for k, v in t.items() if k.endswith('_seconds')} }")
    header = (
        "| format | status | images | matched | max abs diff | box px | min IoU | mAP pt | export | delta | parity s |"
    )
    print(f"(b) {header}")
    print("    |---|---|---|---|---|---|---|---|---|---|---|")
    for fmt, export, _ in rows:
        p, tm = export["parity"] or {}, export["timings"]
        raw, metric = p.get("raw", {}), p.get("metric", {})
        seconds = tm.get("parity_raw_seconds", 0) + tm.get("parity_metric_seconds", 0)
        print(
            f"    | {fmt} | {export['status']} | {raw.get('images')} | {raw.get('matched')}/{raw.get('detections')} | "
            f"{raw.get('max_abs_diff', 0):.2e} | {raw.get('max_box_diff_px', 0):.2e} | {raw.get('min_iou')} | "
            f"{metric.get('checkpoint', 0):.4f} | {metric.get('export', 0):.4f} | {metric.get('delta', 0):+.4f} | "
            f"{seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
