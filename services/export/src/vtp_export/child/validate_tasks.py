"""Validating and packaging a segment, pose or classify export (the child's stages after `exporting`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vtp_export.child import package_tasks, parity, parity_tasks

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def classify_validation_images(data_dir: Path) -> list[Path]:
    """ImageFolder layout: val/<class>/<image>."""
    return sorted(p for p in (data_dir / "val").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def validate_and_package(
    spec: dict[str, Any],
    report: Any,
    model: Any,
    weights: Path,
    exported: Path,
    model_file: str,
    out: Path,
    timings: dict[str, float],
    images: list[Path],
) -> dict[str, Any]:
    """The parity report (raw outputs, matched instances or top-k, the task metric), then the package."""
    task, options = spec["task_type"], spec["options"]
    imgsz, batch = options["imgsz"], options.get("batch", 1)
    data = Path(spec["data_dir"]) if task == "classify" else Path(spec["data_dir"]) / "data.yaml"
    kpt_shape = list(model.model.kpt_shape) if task == "pose" else None
    names = {int(k): str(v) for k, v in dict(model.names).items()}
    t = time.monotonic()
    pt_backend, export_backend = parity.load(weights), parity.load(exported)
    shape_meta = {"names": names, "kpt_shape": kpt_shape}
    conf = spec["parity_conf"]
    raw, platform = parity_tasks.compare(task, pt_backend, export_backend, images, imgsz, conf, shape_meta)
    timings["parity_raw_seconds"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    pt_metric = parity_tasks.metric(task, weights, data, imgsz, batch, out / "val", "checkpoint")
    export_metric = parity_tasks.metric(task, exported, data, imgsz, batch, out / "val", "export")
    timings["parity_metric_seconds"] = round(time.monotonic() - t, 3)
    tol = parity_tasks.tolerances(spec["precision"], spec["tolerances"])
    failures = parity_tasks.verdict(task, raw, pt_metric, export_metric, tol)
    metric: dict[str, Any] = {
        "name": parity_tasks.METRICS[task],
        "split": "val",
        "checkpoint": pt_metric["value"],
        "export": export_metric["value"],
        "delta": export_metric["value"] - pt_metric["value"],
    }
    for key in ("box", "top5"):
        if key in pt_metric:
            metric[key] = {"checkpoint": pt_metric[key], "export": export_metric[key]}
    preprocessing = "shortest side + centre crop" if task == "classify" else "letterbox"
    parity_report: dict[str, Any] = {
        "passed": not failures,
        "task": task,
        "precision": spec["precision"],
        "tolerances": tol,
        "letterbox": f"square {imgsz}x{imgsz} ({preprocessing})",
        "raw": raw,
        "metric": metric,
        "failures": failures,
    }
    x = parity_tasks.classify_tensor(images[0], imgsz)[0] if task == "classify" else parity.tensor(images[0], imgsz)[0]
    shapes = [list(o.shape) for o in parity_tasks.run(export_backend, x, task)]
    meta = package_tasks.metadata(spec, names, shapes, model_file, kpt_shape)
    result = {"parity": parity_report, "metadata": meta, "timings": timings}
    if failures:
        return {"ok": False, "code": "PARITY_FAILED", "message": "; ".join(failures), **result}

    report.send({"stage": "packaging"})
    t = time.monotonic()
    samples = images[: min(4, len(images))]
    expected = {p.name: platform[p.name] for p in samples}
    archive = package_tasks.build(spec, exported, model_file, meta, parity_report, samples, expected, out)
    check = package_tasks.check_predictor(out / "package", task, samples, expected, conf)
    parity_report["predictor"] = check
    timings["package_seconds"] = round(time.monotonic() - t, 3)
    if not package_tasks.predictor_ok(check):
        return {"ok": False, "code": "PREDICTOR_MISMATCH", "message": f"predict.py disagrees: {check}", **result}
    return {"ok": True, "package": str(archive), **result}
