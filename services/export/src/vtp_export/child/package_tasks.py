"""The package of a segment, pose or classify export: what differs from detection's (`package`).

metadata.json describes the task's outputs (segment: boxes, scores and mask coefficients, then
the prototypes; pose: boxes, scores and `kpt_shape` keypoint values; classify: probabilities)
and classify's own preprocessing; predict.py is `assets/predict_task.py`, which takes the
runtime and the letterbox from `predict_base.py` (the detection predictor).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vtp_export.child import package
from vtp_export.child.parity_tasks import tie_groups

OUTPUT_LAYOUTS = {
    "segment": "output0 [batch, 4 + classes + 32, anchors]: cx, cy, w, h (input pixels), one score per class, "
    "32 mask coefficients; output1 [batch, 32, imgsz/4, imgsz/4]: mask prototypes",
    "pose": "output0 [batch, 4 + classes + keypoints x 3, anchors]: cx, cy, w, h (input pixels), one score per "
    "class, then x, y (input pixels) and a visibility score (0-1) per keypoint",
    "classify": "output0 [batch, classes]: probabilities (softmax applied in the model)",
}


def metadata(
    spec: dict[str, Any], names: dict[int, str], shapes: list[list[int]], model_file: str, kpt_shape: list[int] | None
) -> dict[str, Any]:
    task, imgsz = spec["task_type"], spec["options"]["imgsz"]
    meta = package.metadata(spec, names, shapes[0], model_file)
    nms = {"iou": 0.7, "class_aware": True, "max_det": 300}
    boxes = "xywh -> xyxy, minus letterbox padding, divided by the resize gain, clipped to the image"
    output: dict[str, Any] = {"shape": shapes[0], "shapes": shapes, "names": ["output0", "output1"][: len(shapes)]}
    output["layout"] = OUTPUT_LAYOUTS[task]
    if task == "classify":
        meta["input"].pop("letterbox")
        meta["input"]["resize"] = {
            "shortest_side": imgsz,
            "interpolation": "bilinear (Pillow, antialiased like torchvision's Resize)",
            "center_crop": [imgsz, imgsz],
        }
        meta["input"]["scaling"] = "pixel / 255 (no mean/std normalisation)"
        output["postprocess"] = {"top_k": 5, "score": "the probability"}
    elif task == "segment":
        output["mask_coefficients"] = shapes[1][1] if len(shapes) > 1 else 32
        output["postprocess"] = {
            "score": "max class score; class = argmax",
            "conf_threshold": 0.25,
            "nms": nms,
            "boxes": boxes,
            "masks": "coefficients @ prototypes, bilinear upsampling to imgsz x imgsz, > 0, cropped to the box "
            "(input pixels); detections whose mask is empty are dropped; outer contours (OpenCV) scaled like boxes",
        }
    else:
        output["kpt_shape"] = kpt_shape
        output["postprocess"] = {
            "score": "max class score; class = argmax",
            "conf_threshold": 0.25,
            "nms": nms,
            "boxes": boxes,
            "keypoints": "x, y scaled like boxes and clipped; the third value is the visibility score",
        }
    meta["output"] = output
    if kpt_shape is not None:
        meta["kpt_shape"] = kpt_shape
    return meta


def triton_config(name: str, meta: dict[str, Any]) -> str:
    """`package.triton_config` with every output of the task (segment has two)."""
    config = package.triton_config(name, meta)
    dynamic = meta["input"]["dynamic"]
    outs = [
        f'{{ name: "{n}" data_type: TYPE_FP32 dims: {s[1:] if dynamic else s} }}'
        for n, s in zip(meta["output"]["names"], meta["output"]["shapes"], strict=True)
    ]
    lines = [f"output [{', '.join(outs)}]" if line.startswith("output [") else line for line in config.splitlines()]
    return "\n".join(lines) + "\n"


def readme(meta: dict[str, Any], report: dict[str, Any]) -> str:
    raw, metric = report["raw"], report["metric"]
    runtime = " ".join(package.RUNTIME_PACKAGES.get(meta["export"]["format"], ()))
    head = f"# {meta['export']['format']} export of job {meta['source']['job_id']} (v{meta['source']['version']})"
    return f"""{head}

Task: {meta["task"]}. Classes: {", ".join(meta["names"].values())}. Input: {meta["input"]["shape"]} float32 RGB 0-1.
Output: {meta["output"]["layout"]}.

## Run it

    pip install numpy opencv-python-headless pillow {runtime}
    python predict.py samples/*.* --json   # samples/expected.json: the platform's answers, its `conf`

`predict.py` (with `predict_base.py`, the runtime and letterbox) reproduces the platform's answers.

## Parity with the checkpoint ({report["precision"]})

- images compared: {raw["images"]}; max abs output difference: {raw["max_abs_diff"]:.3g}
- {metric["name"]} on the validation split: checkpoint {metric["checkpoint"]:.4f}, export {metric["export"]:.4f}
"""


def build(
    spec: dict[str, Any],
    exported: Path,
    model_file: str,
    meta: dict[str, Any],
    report: dict[str, Any],
    samples: list[Path],
    expected: dict[str, Any],
    out: Path,
) -> Path:
    """`package.assemble` with the task's predict.py (and the detection predictor as predict_base.py)."""
    doc = {"conf": spec["parity_conf"], "iou": 0.7, "task": meta["task"], "answers": expected}
    scripts = {"predict.py": "predict_task.py", "predict_base.py": "predict.py"}
    return package.assemble(
        spec, exported, model_file, meta, report, samples, out, scripts, readme(meta, report), doc, triton_config
    )


def polygon_iou(a: list[list[list[float]]], b: list[list[list[float]]], shape: tuple[int, int]) -> float:
    """IoU of two sets of polygons rasterised on the image (contours compare badly point by point)."""
    import cv2

    def raster(polys: list[list[list[float]]]) -> np.ndarray:
        canvas = np.zeros(shape, np.uint8)
        pts = [np.round(np.asarray(p, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2) for p in polys if len(p)]
        if pts:
            cv2.fillPoly(canvas, pts, 1)
        return canvas

    ra, rb = raster(a), raster(b)
    union = int((ra | rb).sum())
    return float((ra & rb).sum()) / union if union else 1.0


def _pairs(got: list[dict[str, Any]], want: dict[str, Any], free: list[int]) -> list[tuple[dict[str, Any], int]]:
    """Each predicted instance with the closest of the platform's `free` ones (same class; box, then score)."""
    pairs = []
    for g in sorted(got, key=lambda d: -d["score"]):

        def cost(k: int, g: dict[str, Any] = g) -> tuple[bool, float, float]:
            row = want["rows"][k]
            box = float(np.abs(np.array(g["box"]) - np.array(row[:4])).max())
            return (int(row[5]) != g["class"], round(box, 3), abs(g["score"] - row[4]))

        k = min(free, key=cost)
        free.remove(k)
        pairs.append((g, k))
    return pairs


def _untied(rows: list[list[float]]) -> list[int]:
    return [k for k, group in enumerate(tie_groups(np.asarray(rows, dtype=np.float64))) if len(group) == 1]


def check_predictor(
    root: Path, task: str, samples: list[Path], expected: dict[str, Any], conf: float
) -> dict[str, Any]:
    """Run the package's own predict.py on the samples and compare with the platform's answers."""
    import cv2

    sys.path.insert(0, str(root))
    try:
        module_spec = importlib.util.spec_from_file_location("package_predict", root / "predict.py")
        assert module_spec is not None and module_spec.loader is not None
        predictor = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(predictor)
        model = predictor.Model()
        worst = {"box_px": 0.0, "score": 0.0, "kpt_px": 0.0, "min_polygon_iou": 1.0, "tied": 0, "compared": 0}
        mismatched = 0
        for image_path in samples:
            image = cv2.imread(str(image_path))
            if image is None:
                raise ValueError(f"cannot read {image_path}")
            got, want = predictor.predict(model, image, conf=conf), expected[image_path.name]
            if task == "classify":
                g, w = got["top5"], want["top5"]
                mismatched += int([d["class"] for d in g] != [c for c, _ in w])
                worst["score"] = max([worst["score"], *(abs(d["score"] - s) for d, (_, s) in zip(g, w, strict=False))])
                worst["compared"] += 1
                continue
            # Instances tied in score with another of their class survive NMS by sort order alone (two
            # correct implementations may keep different anchors): only the untied ones are compared.
            clear = _untied(want["rows"])
            mine = [got[k] for k in _untied([[*d["box"], d["score"], d["class"]] for d in got])]
            worst["tied"] += len(want["rows"]) - len(clear)
            if len(mine) != len(clear):
                mismatched += 1
                continue
            for g, k in _pairs(mine, want, clear):
                row = want["rows"][k]
                worst["box_px"] = max(worst["box_px"], float(np.abs(np.array(g["box"]) - np.array(row[:4])).max()))
                worst["score"] = max(worst["score"], abs(g["score"] - row[4]))
                mismatched += int(g["class"] != int(row[5]))
                worst["compared"] += 1
                if task == "segment":
                    iou = polygon_iou(g["polygons"], want["polygons"][k], image.shape[:2])
                    worst["min_polygon_iou"] = min(worst["min_polygon_iou"], iou)
                else:
                    d = float(np.abs(np.array(g["keypoints"]) - np.array(want["keypoints"][k])).max())
                    worst["kpt_px"] = max(worst["kpt_px"], d)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("predict_base", None)
    named = {k if k in ("min_polygon_iou", "tied", "compared") else f"max_{k}": v for k, v in worst.items()}
    return {"images": len(samples), "mismatched": mismatched, **named}


def predictor_ok(check: dict[str, Any]) -> bool:
    return (
        not check["mismatched"]
        and check["max_box_px"] <= 0.01
        and check["max_score"] <= 1e-4
        and check["max_kpt_px"] <= 0.01
        and check["min_polygon_iou"] >= 0.9
    )
