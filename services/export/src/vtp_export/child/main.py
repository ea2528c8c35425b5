"""`python -m vtp_export.child.main SPEC`: one export attempt, started by the worker's `ChildProcess`.

Reports JSON lines on the pipe `VTP_REPORT_FD`: `{"stage": ...}` as it enters exporting,
validating and packaging, then exactly one `{"result": {...}}`. Runs with YOLO_AUTOINSTALL=false:
a missing toolchain fails the export instead of being pip-installed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

REPORT_FD_ENV = "VTP_REPORT_FD"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MODEL_FILES = {
    "onnx": "model.onnx",
    "torchscript": "model.torchscript",
    "openvino": "model_openvino",
    "ncnn": "model_ncnn",
    "mnn": "model.mnn",
    "litert": "model.tflite",
    "paddle": "model_paddle_model",
    "coreml": "model.mlpackage",
}


class ChildFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Reporter:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def send(self, message: dict[str, Any]) -> None:
        self._stream.write(json.dumps(message) + "\n")
        self._stream.flush()


def run(spec: dict[str, Any], report: Reporter) -> dict[str, Any]:
    from ultralytics import YOLO  # type: ignore[attr-defined]

    from vtp_export.child import guards, not_run, package, parity
    from vtp_export.domain.formats import parity_not_run

    timings: dict[str, float] = {}
    fmt, options = spec["format"], spec["options"]
    out = Path(spec["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.pt"  # Ultralytics names the export after its source file
    shutil.copy2(spec["checkpoint"], weights)

    report.send({"stage": "exporting"})
    t = time.monotonic()
    model = YOLO(str(weights))
    if model.task != spec["task_type"]:
        raise ChildFailure("TASK_NOT_SUPPORTED", f"the checkpoint is a {model.task} model, not {spec['task_type']}")
    kwargs: dict[str, Any] = {
        "format": fmt,
        "imgsz": options["imgsz"],
        "batch": options.get("batch", 1),
        "device": "cpu",
    }
    for name in ("dynamic", "simplify", "opset"):
        if options.get(name) is not None:
            kwargs[name] = options[name]
    if options.get("half"):
        kwargs["quantize"] = 16
    if fmt == "mnn":
        guards.block_mnn_telemetry()
    try:
        exported = Path(model.export(**kwargs))
    except Exception as exc:  # Ultralytics raises bare Exceptions, ImportErrors for missing toolchains
        traceback.print_exc()
        raise ChildFailure("EXPORT_FAILED", f"{type(exc).__name__}: {exc}") from exc
    if spec.get("debug_perturb") is not None:
        perturb_onnx(exported, float(spec["debug_perturb"]))
    timings["export_seconds"] = round(time.monotonic() - t, 3)

    report.send({"stage": "validating"})
    reason = parity_not_run(fmt, os.uname().sysname)
    if reason is not None:  # CoreML off macOS: packaged with its parity `not_run`, never a made-up report
        images = validation_images(Path(spec["data_dir"]) / "data.yaml")[: spec["parity_images"]]
        if not images:
            raise ChildFailure("DATASET_NOT_FOUND", "the snapshot's validation split has no images to package")
        report.send({"stage": "packaging"})
        names = dict(model.names)
        return not_run.package_unchecked(spec, names, weights, exported, MODEL_FILES[fmt], out, images, timings, reason)
    if fmt == "openvino" and not options.get("half"):
        pin_openvino_f32()
    if spec["task_type"] != "detect":  # segment, pose, classify: their own parity gate and package
        from vtp_export.child import validate_tasks

        data_dir = Path(spec["data_dir"])
        classify = spec["task_type"] == "classify"
        found = (
            validate_tasks.classify_validation_images(data_dir)
            if classify
            else validation_images(data_dir / "data.yaml")
        )
        if not found:
            raise ChildFailure("DATASET_NOT_FOUND", "the snapshot's validation split has no images to compare on")
        chosen = found[: spec["parity_images"]]
        return validate_tasks.validate_and_package(
            spec, report, model, weights, exported, MODEL_FILES[fmt], out, timings, chosen
        )
    t = time.monotonic()
    data_yaml = Path(spec["data_dir"]) / "data.yaml"
    images = validation_images(data_yaml)[: spec["parity_images"]]
    if not images:
        raise ChildFailure("DATASET_NOT_FOUND", "the snapshot's validation split has no images to compare on")
    pt_backend, export_backend = parity.load(weights), parity.load(exported)
    imgsz = options["imgsz"]
    margin = spec["tolerances"]["score"]
    min_iou = spec["tolerances"]["min_iou"]
    raw, platform = parity.compare_outputs(
        pt_backend, export_backend, images, imgsz, spec["parity_conf"], margin, min_iou
    )
    timings["parity_raw_seconds"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    batch = options.get("batch", 1)
    pt_map = parity.metric(weights, data_yaml, imgsz, batch, out / "val", "checkpoint")
    export_map = parity.metric(exported, data_yaml, imgsz, batch, out / "val", "export")
    timings["parity_metric_seconds"] = round(time.monotonic() - t, 3)
    failures = parity.verdict(raw, pt_map, export_map, spec["tolerances"])
    parity_report = {
        "status": "failed" if failures else "passed",
        "passed": not failures,
        "precision": spec["precision"],
        "tolerances": spec["tolerances"],
        "letterbox": f"square {imgsz}x{imgsz} (rect=False)",
        "raw": raw,
        "metric": {
            "name": "mAP50-95",
            "split": "val",
            "checkpoint": pt_map,
            "export": export_map,
            "delta": export_map - pt_map,
        },
        "failures": failures,
    }
    output_shape = list(parity.raw_output(export_backend, parity.tensor(images[0], imgsz)[0]).shape)
    meta = package.metadata(spec, dict(model.names), output_shape, MODEL_FILES[fmt])
    if failures:
        return {
            "ok": False,
            "code": "PARITY_FAILED",
            "message": "; ".join(failures),
            "parity": parity_report,
            "metadata": meta,
            "timings": timings,
        }

    report.send({"stage": "packaging"})
    t = time.monotonic()
    samples = images[: min(4, len(images))]
    expected = {p.name: platform[p.name] for p in samples}
    archive = package.build(spec, exported, MODEL_FILES[fmt], meta, parity_report, samples, expected, out)
    predictor = package.check_predictor(out / "package", samples, expected, spec["parity_conf"], margin, min_iou)
    parity_report["predictor"] = predictor
    timings["package_seconds"] = round(time.monotonic() - t, 3)
    if predictor["mismatched"] or predictor["max_box_diff_px"] > 0.01 or predictor["max_score_diff"] > 1e-4:
        return {
            "ok": False,
            "code": "PREDICTOR_MISMATCH",
            "message": f"predict.py disagrees: {predictor}",
            "parity": parity_report,
            "metadata": meta,
            "timings": timings,
        }
    return {"ok": True, "package": str(archive), "parity": parity_report, "metadata": meta, "timings": timings}


def validation_images(data_yaml: Path) -> list[Path]:
    from ultralytics.utils import YAML

    data: dict[str, Any] = YAML.load(data_yaml)  # type: ignore[no-untyped-call]
    root = Path(data.get("path", data_yaml.parent))
    val = data.get("val")
    entries = val if isinstance(val, list) else [val] if val else []
    found: list[Path] = []
    for entry in entries:
        path = Path(entry) if Path(entry).is_absolute() else root / entry
        if path.is_dir():
            found += [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file() and path.suffix == ".txt":
            found += [Path(line.strip()) for line in path.read_text().splitlines() if line.strip()]
    return sorted(found)


def pin_openvino_f32() -> None:
    """Check an fp32 OpenVINO export in fp32, as the package's predict.py runs it.

    OpenVINO's CPU plugin runs bf16 by default on CPUs with AVX512_BF16 or AMX (0.12 px of box
    error at 64 px measured here), and Ultralytics pins f32 only on ARM64, so every CPU compile in
    this child gets the hint.
    """
    import openvino as ov

    original = ov.Core.compile_model

    def compile_model(self: Any, model: Any, device_name: Any = None, config: Any = None, **kwargs: Any) -> Any:
        pinned = {**(config or {}), "INFERENCE_PRECISION_HINT": ov.Type.f32}
        return original(self, model, device_name, pinned, **kwargs)

    ov.Core.compile_model = compile_model


def perturb_onnx(path: Path, value: float) -> None:
    """Test stacks only: add `value` to the model's first output, a corrupted export the gate must stop."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    name = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{name}_unperturbed" if o == name else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), "debug_perturb"))
    model.graph.node.append(helper.make_node("Add", [f"{name}_unperturbed", "debug_perturb"], [name]))
    onnx.save(model, str(path))


def exit_with_parent() -> None:
    """The worker holds the lease and does every upload: once it is gone, this child's work is lost."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    exit_with_parent()
    spec = json.loads(Path(sys.argv[1]).read_text())
    report = Reporter(os.fdopen(int(os.environ[REPORT_FD_ENV]), "w", buffering=1))
    try:
        result = run(spec, report)
    except ChildFailure as exc:
        result = {"ok": False, "code": exc.code, "message": str(exc)}
    except Exception as exc:  # a bug or a toolchain crash must still end the attempt with a result
        traceback.print_exc()
        result = {"ok": False, "code": "EXPORT_FAILED", "message": f"{type(exc).__name__}: {exc}"}
    report.send({"result": result})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: with torch loaded it takes seconds and frees nothing


if __name__ == "__main__":
    main()
