"""Segment, pose and classify deployments: what their package declares, how a model is checked, one answer.

Detection stays in `predicting`; these tasks share its decoding, threads and timings. Answers:
segment: detections with `polygons` (outer contours, image pixels); pose: detections with
`keypoints` ([x, y, score] per keypoint, image pixels); classify: `top5` classes with scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from vtp_inference.adapters.runtimes import Model, ModelInvalid
from vtp_inference.predict import classify, pose, segment
from vtp_inference.predict.detect import letterbox, to_image
from vtp_inference.predict.instances import nms_with_extra

TASKS = ("segment", "pose", "classify")
MASK_DIM = 32  # Ultralytics' segment heads: 32 prototypes


class Thresholds(Protocol):
    @property
    def conf(self) -> float: ...
    @property
    def iou(self) -> float: ...
    @property
    def max_det(self) -> int: ...
    @property
    def classes(self) -> list[int] | None: ...


def task_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """What serving the task needs from the package's metadata.json (kept on the deployment)."""
    task = meta.get("task")
    if task == "pose":
        shape = meta.get("kpt_shape") or (meta.get("output") or {}).get("kpt_shape")
        if not (isinstance(shape, list) and len(shape) == 2 and shape[1] in (2, 3)):
            raise ValueError(f"a pose package needs kpt_shape [keypoints, 2 or 3], not {shape!r}")
        return {"kpt_shape": [int(shape[0]), int(shape[1])]}
    if task == "segment":
        return {"mask_dim": int((meta.get("output") or {}).get("mask_coefficients") or MASK_DIM)}
    return {}


def all_outputs(model: Model, x: np.ndarray) -> list[np.ndarray]:
    """Every output of the model; a runtime without `run_all` gives its first only."""
    run_all: Callable[[np.ndarray], list[np.ndarray]] | None = getattr(model, "run_all", None)
    return run_all(x) if run_all is not None else [model(x)]


def model_outputs(model: Model) -> list[tuple[str, list[Any]]]:
    """(name, shape) of every output (segment: detections, then prototypes); a runtime without the list, its one."""
    found: list[tuple[str, list[Any]]] | None = getattr(model, "outputs", None)
    return found or [(model.output_name, model.output_shape)]


def prober(task: str, meta: dict[str, Any], imgsz: int, nc: int) -> Callable[[Model], None]:
    """A check of the task's interface on a blank image, before a deployment serves the model."""

    def check(model: Model) -> None:
        dims = [d if isinstance(d, int) else -1 for d in model.input_shape[1:]]
        if dims not in ([3, imgsz, imgsz], [3, -1, -1]):
            raise ModelInvalid(f"input shape {model.input_shape} is not [N, 3, {imgsz}, {imgsz}]")
        outs = all_outputs(model, np.zeros((1, 3, imgsz, imgsz), np.float32))
        if not all(np.isfinite(o).all() for o in outs):
            raise ModelInvalid("the model's output on a blank image is not finite")
        first = outs[0]
        if task == "classify":
            if first.shape != (1, nc):
                raise ModelInvalid(f"output shape {list(first.shape)} is not [N, {nc}] class probabilities")
            return
        extra = meta["mask_dim"] if task == "segment" else int(np.prod(meta["kpt_shape"]))
        if first.ndim != 3 or first.shape[1] != 4 + nc + extra:
            raise ModelInvalid(f"output shape {list(first.shape)} is not [N, 4 + {nc} + {extra}, anchors]")
        if task == "segment" and (len(outs) < 2 or outs[1].ndim != 4 or outs[1].shape[1] != extra):
            raise ModelInvalid(f"a segment model needs a second output [N, {extra}, h, w] (its runtime gives one)")

    return check


def predict(
    task: str, model: Model, meta: dict[str, Any], image: np.ndarray, params: Thresholds
) -> tuple[dict[str, Any], dict[str, float]]:
    """One image's answer (without timings) and its preprocess/inference/postprocess seconds."""
    names: dict[str, str] = meta["names"]
    size = int(meta["imgsz"])
    h, w = image.shape[:2]
    t0 = time.perf_counter()
    if task == "classify":
        x = classify.preprocess(image, size)
        t1 = time.perf_counter()
        probs = all_outputs(model, x)[0][0]
        t2 = time.perf_counter()
        top5 = [
            {"class_id": c, "class_name": names.get(str(c), str(c)), "confidence": p}
            for c, p in classify.top_k(probs, 5, params.classes)
        ]
        answer: dict[str, Any] = {"width": w, "height": h, "top5": top5}
        return answer, {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": time.perf_counter() - t2}
    boxed = letterbox(image, size)
    t1 = time.perf_counter()
    outs = all_outputs(model, boxed.tensor)
    t2 = time.perf_counter()
    rows, extra = nms_with_extra(outs[0][0], len(names), params.conf, params.iou, params.max_det, params.classes)
    own: dict[str, list[Any]] = {}
    if task == "segment":
        binary = segment.masks(outs[1][0], extra, rows[:, :4], size)
        keep = binary.reshape(len(binary), -1).any(1)  # as Ultralytics: a detection without a mask is dropped
        rows, binary = rows[keep], binary[keep]
        own["polygons"] = segment.polygons(binary, boxed, (h, w))
    else:
        own["keypoints"] = pose.keypoints(extra, meta["kpt_shape"], boxed, (h, w)).tolist()
    detections = described(rows, boxed, (h, w), names, own)
    answer = {"width": w, "height": h, "detections": detections}
    return answer, {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": time.perf_counter() - t2}


def described(
    rows: np.ndarray, boxed: Any, size: tuple[int, int], names: dict[str, str], own: dict[str, list[Any]] | None = None
) -> list[dict[str, Any]]:
    """Each kept row as an answer's detection: pixel `xyxy`, normalised `xywhn`, class, confidence, and `own`
    per-detection fields (a segment's polygons, a pose's keypoints)."""
    h, w = size
    xyxy = to_image(rows, boxed, (h, w))
    xywhn = np.stack(
        [(xyxy[:, 0] + xyxy[:, 2]) / 2 / w, (xyxy[:, 1] + xyxy[:, 3]) / 2 / h,
         (xyxy[:, 2] - xyxy[:, 0]) / w, (xyxy[:, 3] - xyxy[:, 1]) / h], 1,
    )  # fmt: skip
    extra = own or {}
    return [
        {"class_id": int(c), "class_name": names.get(str(int(c)), str(int(c))), "confidence": float(s),
         "xyxy": box, "xywhn": norm, **{k: v[i] for k, v in extra.items()}}
        for i, (c, s, box, norm) in enumerate(zip(rows[:, 5], rows[:, 4], xyxy.tolist(), xywhn.tolist(), strict=True))
    ]  # fmt: skip
