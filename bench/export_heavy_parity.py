"""Parity of the heavy export formats (MNN, LiteRT, PaddlePaddle, CoreML) on a trained model.

Needs `make setup-exporters`. A local stack (identity, datasets, jobs, trainer-runner, export, with
the venvs of `.venv-exporters/toolchains.json`) is started here on free ports; the demo's job is
trained (200 generated shape images, yolo11n detect from its yaml, 15 epochs at 128 px, CPU), and
exported to each heavy format with default options. Prints the table of docs/exports.md: raw-output
differences on the validation images, matched detections, mAP50-95 of both and the delta, the
parity stage's time, the package's size, and the predictor check.

    python bench/export_heavy_parity.py [--epochs 15] [--images 200] [--imgsz 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import platform_steps as steps

FORMATS = ("mnn", "litert", "paddle", "coreml")


def _row(fmt: str, export: dict[str, Any]) -> str:
    p, t = export["parity"] or {}, export["timings"]
    size = f"{(export.get('artifact') or {}).get('size_bytes', 0) / 1e6:.1f} MB"
    if p.get("status") == "not_run":
        return f"| {fmt} | {export['status']} | not run: {p.get('reason')} | | | | | | | {size} |"
    raw, metric, predictor = p.get("raw", {}), p.get("metric", {}), p.get("predictor", {})
    seconds = t.get("parity_raw_seconds", 0) + t.get("parity_metric_seconds", 0)
    return (
        f"| {fmt} | {export['status']} | {raw.get('images')} | {raw.get('matched')}/{raw.get('detections')} | "
        f"{raw.get('max_abs_diff', 0):.1e} | {raw.get('min_iou', 0):.6f} | {raw.get('max_score_diff', 0):.1e} | "
        f"{metric.get('checkpoint', 0):.4f} / {metric.get('export', 0):.4f} / {metric.get('delta', 0):+.4f} | "
        f"{seconds:.1f} s | {size} | {predictor.get('max_box_diff_px')} px |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--imgsz", type=int, default=128)
    args = parser.parse_args()

    from vtp_localstack.ports import isolated_config
    from vtp_localstack.stack import LocalStack

    toolchains = Path(".venv-exporters/toolchains.json").resolve()
    if not toolchains.is_file():
        raise SystemExit("run make setup-exporters first")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = isolated_config(root / "run", export_toolchains=toolchains)
        stack = LocalStack(cfg)
        try:
            stack.up(services=("identity", "datasets", "jobs", "trainer-runner", "export"))
            headers = {"Authorization": f"Bearer {(cfg.run_path / 'admin-token').read_text().strip()}"}
            with httpx.Client(base_url=cfg.gateway_url, headers=headers, timeout=60) as api:
                began = time.monotonic()
                job = steps.train_detect(api, root, images=args.images, epochs=args.epochs, imgsz=args.imgsz, seed=0)
                best = job["best_metrics"].get("mAP50-95")
                print(f"trained in {time.monotonic() - began:.0f} s: best mAP50-95 {best}")
                caps = api.get("/api/v1/exports/capabilities").json()["frameworks"][0]["tasks"][0]["formats"]
                for f in caps:
                    if f["format"] in FORMATS:
                        print(f"{f['format']}: available {f['available']} {f['reason'] or ''}")
                created = {}
                for fmt in FORMATS:
                    response = api.post("/api/v1/exports", json={"job_id": job["id"], "format": fmt})
                    if response.status_code != 202:
                        raise SystemExit(f"{fmt} refused: {response.text}")
                    created[fmt] = response.json()["id"]
                done = {
                    fmt: steps.wait(api, f"/api/v1/exports/{i}", lambda e: e["status"] in ("succeeded", "failed"))
                    for fmt, i in created.items()
                }
        finally:
            stack.down()
    print(
        "| format | status | images | matched | max abs diff | min IoU | max score diff | mAP50-95 pt / export / delta "
        "| parity stage | package | predict.py |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fmt, export in done.items():
        print(_row(fmt, export))


if __name__ == "__main__":
    main()
