"""The package a user downloads: model files, metadata.json, predict.py, README, samples, Triton repository."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ASSETS = Path(__file__).parent / "assets"
RUNTIME_PACKAGES = {  # what the package's predict.py needs besides numpy and OpenCV
    "onnx": ("onnx", "onnxslim", "onnxruntime"),
    "torchscript": (),
    "openvino": ("openvino",),
    "ncnn": ("ncnn", "pnnx"),
    "mnn": ("MNN",),
    "litert": ("ai-edge-litert",),
    "paddle": ("paddlepaddle",),
    "coreml": ("coremltools",),
}
# LiteRT models put out boxes divided by the input size (so int8 keeps their resolution): times width, height.
_BOX_UNITS = {"litert": "divided by the input width and height (multiply them back)"}
CONVERTERS = {"mnn": ("onnx", "onnxslim"), "litert": ("litert-torch",), "paddle": ("x2paddle",)}


def versions(fmt: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    packages = (*RUNTIME_PACKAGES.get(fmt, ()), *CONVERTERS.get(fmt, ()))
    for name in ("ultralytics", "torch", "numpy", "opencv-python", "protobuf", *packages):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def metadata(spec: dict[str, Any], names: dict[int, str], output_shape: list[int], model_file: str) -> dict[str, Any]:
    imgsz = spec["options"]["imgsz"]
    units = _BOX_UNITS.get(spec["format"], "in input pixels")
    return {
        "task": spec["task_type"],
        "names": {str(k): v for k, v in names.items()},
        "model_file": model_file,
        "input": {
            "name": "images",
            "imgsz": imgsz,
            "shape": [spec["options"].get("batch", 1), 3, imgsz, imgsz],
            "dynamic": bool(spec["options"].get("dynamic")),
            "layout": "NCHW",
            "dtype": "float32",
            "channel_order": "RGB (images are read as BGR and reversed)",
            "scaling": "pixel / 255",
            "letterbox": {"size": [imgsz, imgsz], "keep_ratio": True, "centered": True, "pad_value": 114},
        },
        "output": {
            "shape": output_shape,
            "layout": f"[batch, 4 + classes, anchors]: cx, cy, w, h {units}, then one score per class",
            "postprocess": {
                "score": "max class score; class = argmax",
                "conf_threshold": 0.25,
                "nms": {"iou": 0.7, "class_aware": True, "max_det": 300},
                "boxes": "xywh -> xyxy, minus letterbox padding, divided by the resize gain, clipped to the image",
            },
        },
        "export": {"format": spec["format"], "options": spec["options"], "versions": versions(spec["format"])},
        "source": {
            "job_id": spec["job_id"],
            "version": spec.get("version"),
            "checkpoint": spec["checkpoint_info"],
            "snapshot_id": spec["snapshot_id"],
        },
    }


def triton_config(name: str, meta: dict[str, Any]) -> str:
    """A Triton model configuration; dynamic batching needs a model exported with dynamic=true."""
    inp, out = meta["input"], meta["output"]["shape"]
    dynamic = inp["dynamic"]
    in_dims = [3, inp["imgsz"], inp["imgsz"]] if dynamic else inp["shape"]
    out_dims = out[1:] if dynamic else out
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max(8, inp['shape'][0]) if dynamic else 0}",
        f'input [{{ name: "images" data_type: TYPE_FP32 dims: {in_dims} }}]',
        f'output [{{ name: "output0" data_type: TYPE_FP32 dims: {out_dims} }}]',
        "instance_group [{ kind: KIND_CPU count: 1 }]",
    ]
    if dynamic:
        lines.append("dynamic_batching { max_queue_delay_microseconds: 500 }")
    else:
        lines.append("# fixed batch 1: export with options.dynamic=true for Triton's dynamic batching")
    return "\n".join(lines) + "\n"


def readme(meta: dict[str, Any], report: dict[str, Any]) -> str:
    fmt, names = meta["export"]["format"], ", ".join(meta["names"].values())
    checked = report.get("status") != "not_run"
    reproduces = (
        "reproduces the platform's predictions (`samples/expected.json`, made by the platform with this export"
        if checked
        else "was not run by the platform (see below); `samples/expected.json` holds the PyTorch checkpoint's"
        " predictions, which it should reproduce"
    )
    return f"""# {fmt} export of job {meta["source"]["job_id"]} (v{meta["source"]["version"]})

Task: {meta["task"]}. Classes: {names}. Input: {meta["input"]["shape"]} float32 RGB 0-1, square letterbox
(grey 114) to {meta["input"]["imgsz"]} px. Output: {meta["output"]["layout"]}.

## Run it

    pip install numpy opencv-python-headless {" ".join(RUNTIME_PACKAGES.get(fmt, ())) or "torch"}
    python predict.py samples/*.png --json   # samples/expected.json: same images, its `conf`

`predict.py` {reproduces} on the same images). `metadata.json` describes preprocessing, output
layout and postprocessing, the export options, the source checkpoint (sha256) and tool versions.
{"`triton/` is a Triton model repository (`config.pbtxt`)." if fmt == "onnx" else ""}

## Parity with the checkpoint ({report["precision"]})

{_parity_lines(report)}
"""


def _parity_lines(report: dict[str, Any]) -> str:
    if report.get("status") == "not_run":
        return (
            f"Not run: {report['reason']}. Compare it with the checkpoint where its runtime runs before deploying it."
        )
    raw, metric = report["raw"], report["metric"]
    return f"""- images compared: {raw["images"]}, detections: {raw["detections"]}, matched: {raw["matched"]}
- max abs output difference: {raw["max_abs_diff"]:.3g} (boxes {raw["max_box_diff_px"]:.3g} px)
- {metric["name"]} on the validation split: checkpoint {metric["checkpoint"]:.4f}, export {metric["export"]:.4f}"""


def build(
    spec: dict[str, Any],
    exported: Path,
    model_file: str,
    meta: dict[str, Any],
    report: dict[str, Any],
    samples: list[Path],
    expected: dict[str, list[list[float]]],
    out: Path,
) -> Path:
    """Lay the detection package out under out/package and zip it; returns the zip."""
    doc = {"conf": spec["parity_conf"], "iou": 0.7, "detections": _as_detections(expected, meta)}
    scripts = {"predict.py": "predict.py"}
    return assemble(
        spec, exported, model_file, meta, report, samples, out, scripts, readme(meta, report), doc, triton_config
    )


def assemble(
    spec: dict[str, Any],
    exported: Path,
    model_file: str,
    meta: dict[str, Any],
    report: dict[str, Any],
    samples: list[Path],
    out: Path,
    scripts: dict[str, str],
    readme_text: str,
    expected_doc: dict[str, Any],
    triton: Callable[[str, dict[str, Any]], str],
) -> Path:
    """Any task's package under out/package, zipped: the model, metadata.json (with the parity report),
    `scripts` (package name -> file in assets/), README.md, the samples with samples/expected.json,
    and for ONNX a Triton model repository (its config.pbtxt from `triton`)."""
    root = out / "package"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    if exported.is_dir():
        shutil.copytree(exported, root / model_file)
    else:
        shutil.copy2(exported, root / model_file)
    (root / "metadata.json").write_text(json.dumps({**meta, "parity": report}, indent=2))
    for name, asset in scripts.items():
        shutil.copy2(ASSETS / asset, root / name)
    (root / "README.md").write_text(readme_text)
    (root / "samples").mkdir()
    for image in samples:
        shutil.copy2(image, root / "samples" / image.name)
    (root / "samples" / "expected.json").write_text(json.dumps(expected_doc, indent=1))
    if spec["format"] == "onnx":
        repository = root / "triton" / "model"
        (repository / "1").mkdir(parents=True)
        shutil.copy2(exported, repository / "1" / "model.onnx")
        (repository / "config.pbtxt").write_text(triton("model", meta))
    archive = out / f"export-v{spec.get('version') or 0}-{spec['format']}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return archive


def _as_detections(expected: dict[str, list[list[float]]], meta: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [
            {"box": row[:4], "score": row[4], "class": int(row[5]), "name": meta["names"][str(int(row[5]))]}
            for row in rows
        ]
        for name, rows in expected.items()
    }


def check_predictor(
    root: Path,
    samples: list[Path],
    expected: dict[str, list[list[float]]],
    conf: float,
    tol: float = 1e-3,
    min_iou: float = 0.99,
) -> dict[str, Any]:
    """Run the package's own predict.py on the samples and compare with the platform's detections.

    Detections tied within the score tolerance `tol` (`parity_ties`: near-equal scores in NMS, at
    the threshold) may be kept differently by two correct NMS implementations: they are counted
    (`tied` the platform's, `tied_predict` predict.py's), the others compared."""
    import cv2

    from vtp_export.child import parity_ties
    from vtp_export.child.parity import image_candidates

    module_spec = importlib.util.spec_from_file_location("package_predict", root / "predict.py")
    assert module_spec is not None and module_spec.loader is not None
    predictor = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(predictor)
    model = predictor.Model()
    size = int(predictor.META["input"]["imgsz"])
    worst_box, worst_score, mismatched, tied, tied_predict, compared = 0.0, 0.0, 0, 0, 0, 0
    for image_path in samples:
        image = cv2.imread(str(image_path))
        if image is None:
            raise ValueError(f"cannot read {image_path}")
        found = predictor.predict(model, image, conf=conf)
        got = np.array([[*d["box"], d["score"], d["class"]] for d in found], dtype=np.float64).reshape(-1, 6)
        want = np.asarray(expected[image_path.name], dtype=np.float64).reshape(-1, 6)
        cands = image_candidates(model(predictor.preprocess(image, size)[0]), size, image.shape[:2], conf - tol)
        tie_want, tie_got = parity_ties.tied(want, got, cands, cands, conf, tol, min_iou)
        tied, tied_predict = tied + int(tie_want.sum()), tied_predict + int(tie_got.sum())
        got, want = got[~tie_got], want[~tie_want]
        if len(got) != len(want):
            mismatched += 1
            continue
        for g, w in pair_rows(got, want):
            worst_box = max(worst_box, float(np.abs(g[:4] - w[:4]).max()))
            worst_score = max(worst_score, abs(float(g[4] - w[4])))
            mismatched += int(g[5] != w[5])
            compared += 1
    return {
        "images": len(samples),
        "max_box_diff_px": worst_box,
        "max_score_diff": worst_score,
        "mismatched": mismatched,
        "tied": tied,
        "tied_predict": tied_predict,
        "compared": compared,
    }


def pair_rows(got: np.ndarray, want: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """One-to-one pairs, each wanted row with the closest free row (class first, then box and score):
    equal scores come out of two NMS implementations in any order, so a sort by score cannot pair them."""
    free = list(range(len(got)))
    pairs = []
    for k in np.argsort(-want[:, 4], kind="stable"):
        w = want[k]
        j = min(
            free,
            key=lambda n: (bool(got[n, 5] != w[5]), float(np.abs(got[n, :4] - w[:4]).max() + abs(got[n, 4] - w[4]))),
        )
        free.remove(j)
        pairs.append((got[j], w))
    return pairs
