"""The parity gate for segment, pose and classify exports (detect lives in `parity`).

Same principle as detection: both models see the same tensors through Ultralytics' own loaders
(`AutoBackend`), then the same postprocessing. Segment adds the mask coefficients, the
prototypes and the IoU of matched masks; pose the keypoint rows and the distance of matched
keypoints; classify compares probabilities and top-1 / top-5 decisions. Classify's input is
Ultralytics' classify preprocessing (shortest side resized, centre crop), not a letterbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from ultralytics.data.augment import classify_transforms
from ultralytics.nn.autobackend import AutoBackend
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import process_mask, scale_boxes, scale_coords

from vtp_export.child.parity import NMS_IOU, ParityError, match, tensor, validate

# Task-specific tolerances per precision; `VTP_EXPORT_PARITY_TOLERANCES` may override any key.
TASK_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"mask_iou": 0.9, "kpt_px": 0.05, "kpt_dist_px": 0.1, "prob": 1e-3, "top1": 1.0, "top5": 1.0},
    "fp16": {"mask_iou": 0.85, "kpt_px": 1.0, "kpt_dist_px": 2.0, "prob": 0.01, "top1": 0.98, "top5": 0.95},
    "int8": {"mask_iou": 0.7, "kpt_px": 8.0, "kpt_dist_px": 16.0, "prob": 0.1, "top1": 0.9, "top5": 0.8},
}
METRICS = {"segment": "mAP50-95 (mask)", "pose": "mAP50-95 (pose)", "classify": "top-1 accuracy"}


def tolerances(precision: str, given: dict[str, float]) -> dict[str, float]:
    return {**TASK_TOLERANCES.get(precision, TASK_TOLERANCES["fp32"]), **given}


def classify_tensor(image_path: Path, imgsz: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Ultralytics' classify preprocessing: RGB, shortest side to imgsz (PIL bilinear), centre crop, 0-1."""
    image = cv2.imread(str(image_path))
    if image is None:
        raise ValueError(f"cannot read {image_path}")
    x: torch.Tensor = classify_transforms(imgsz)(Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
    return x[None].float(), image.shape[:2]


def outputs(y: Any) -> list[np.ndarray]:
    """Every output tensor, whatever the loader returns: PyTorch nests (out, protos) and adds dicts."""
    if isinstance(y, torch.Tensor | np.ndarray):
        y = [y]
    first = y[0]
    items = list(first) if isinstance(first, list | tuple) else list(y)
    return [t.cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t) for t in items if _is_array(t)]


def _is_array(t: Any) -> bool:
    return isinstance(t, torch.Tensor | np.ndarray)


def run(backend: AutoBackend, x: torch.Tensor, task: str) -> list[np.ndarray]:
    """The task's outputs: segment's two (detections, prototypes), the others' first."""
    with torch.no_grad():
        found = outputs(backend(x))
    return found[:2] if task == "segment" else found[:1]


def _instances(raw: np.ndarray, nc: int, conf: float) -> torch.Tensor:
    """NMS rows: x1, y1, x2, y2, score, class, then the extra columns (mask coefficients or keypoints)."""
    found: list[torch.Tensor] = non_max_suppression(
        torch.from_numpy(raw), conf_thres=conf, iou_thres=NMS_IOU, max_det=300, nc=nc
    )
    return found[0]


def segment_platform(
    outs: list[np.ndarray], nc: int, imgsz: int, shape: tuple[int, int], conf: float
) -> dict[str, Any]:
    """What the platform answers: boxes in image pixels and each mask's contours (Ultralytics' own steps)."""
    det = _instances(outs[0][:1], nc, conf)
    masks = process_mask(torch.from_numpy(outs[1][0]), det[:, 6:], det[:, :4], (imgsz, imgsz), upsample=True)
    keep = masks.amax((-2, -1)) > 0 if len(det) else torch.zeros(0, dtype=torch.bool)
    det, masks = det[keep], masks[keep]
    input_boxes = det[:, :4].clone()
    det[:, :4] = torch.as_tensor(scale_boxes((imgsz, imgsz), det[:, :4], shape))
    polygons = []
    for mask in masks.numpy().astype(np.uint8):
        contours = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        scaled = [scale_coords((imgsz, imgsz), c.reshape(-1, 2).astype(np.float32), shape) for c in contours]
        polygons.append([np.asarray(p).tolist() for p in scaled])
    return {"rows": det[:, :6].numpy().tolist(), "polygons": polygons, "_masks": masks, "_input_boxes": input_boxes}


def pose_platform(
    outs: list[np.ndarray], nc: int, kpt_shape: list[int], imgsz: int, shape: tuple[int, int], conf: float
) -> dict[str, Any]:
    det = _instances(outs[0][:1], nc, conf)
    kpts = scale_coords((imgsz, imgsz), det[:, 6:].reshape(len(det), *kpt_shape).clone(), shape)
    det[:, :4] = torch.as_tensor(scale_boxes((imgsz, imgsz), det[:, :4], shape))
    return {"rows": det[:, :6].numpy().tolist(), "keypoints": np.asarray(kpts).tolist()}


def classify_platform(outs: list[np.ndarray]) -> dict[str, Any]:
    probs = outs[0][0].astype(np.float64)
    top = np.argsort(-probs, kind="stable")[:5]
    return {"top5": [[int(c), float(probs[c])] for c in top]}


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    inter = float((a.bool() & b.bool()).sum())
    union = float((a.bool() | b.bool()).sum())
    return inter / union if union else 1.0


def _match_pairs(ref: np.ndarray, got: np.ndarray, conf: float) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """`parity.match` and the index pairs it matched (the same greedy order, recomputed)."""
    m = match(ref, got, conf, margin=0.02)
    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for i in np.argsort(-ref[:, 4]) if len(ref) else []:
        best, key = -1, (False, 0.0, 0.0)
        for j in range(len(got)):
            if j in used:
                continue
            iou = _box_iou(ref[i, :4], got[j, :4])
            # Boxes clipped to the image can coincide (an undertrained model): the score then decides.
            k = (int(got[j, 5]) == int(ref[i, 5]), round(iou, 6), -abs(float(ref[i, 4] - got[j, 4])))
            if iou >= 0.5 and (best < 0 or k > key):
                best, key = j, k
        if best >= 0:
            used.add(best)
            pairs.append((int(i), best))
    return m, pairs


def tie_groups(rows: np.ndarray, eps: float = 1e-6) -> list[list[int]]:
    """For each instance, the same-class instances whose score equals its own within `eps` (itself included).

    NMS keeps either of two such anchors depending on sort order alone (an undertrained model has
    many), so two correct implementations may give their masks or keypoints in another order: a
    mask or keypoints is compared with the best of its group.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    same = (rows[:, None, 5] == rows[None, :, 5]) & (np.abs(rows[:, None, 4] - rows[None, :, 4]) < eps)
    return [np.flatnonzero(row).tolist() for row in same]


def tied(rows: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Instances that tie another (see `tie_groups`)."""
    return np.asarray([len(g) > 1 for g in tie_groups(rows, eps)], dtype=bool)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def compare(
    task: str,
    pt: AutoBackend,
    exported: AutoBackend,
    images: list[Path],
    imgsz: int,
    conf: float,
    meta: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Raw tensors, matched instances (or top-k decisions) of both models, and the platform's answers."""
    nc, kpt_shape = len(meta["names"]), list(meta.get("kpt_shape") or [])
    diffs: dict[str, float] = {}
    acc: dict[str, list[float]] = {
        "ious": [],
        "score_diffs": [],
        "same": [],
        "mask_ious": [],
        "kpt_dists": [],
        "tied": [],
    }
    unmatched = detections = top1 = top5 = 0
    platform: dict[str, dict[str, Any]] = {}
    for path in images:
        x, shape = classify_tensor(path, imgsz) if task == "classify" else tensor(path, imgsz)
        a, b = run(pt, x, task), run(exported, x, task)
        if [o.shape for o in a] != [o.shape for o in b]:
            raise ParityError(f"output shapes {[list(o.shape) for o in b]} differ from {[list(o.shape) for o in a]}")
        for name, value in _raw_diffs(task, a, b, nc).items():
            diffs[name] = max(diffs.get(name, 0.0), value)
        if task == "classify":
            ref, got = classify_platform(a), classify_platform(b)
            top1 += int(ref["top5"][0][0] == got["top5"][0][0])
            top5 += int({c for c, _ in ref["top5"]} == {c for c, _ in got["top5"]})
            platform[path.name] = got
            continue
        if task == "segment":
            ref, got = segment_platform(a, nc, imgsz, shape, conf), segment_platform(b, nc, imgsz, shape, conf)
        else:
            ref, got = (
                pose_platform(a, nc, kpt_shape, imgsz, shape, conf),
                pose_platform(b, nc, kpt_shape, imgsz, shape, conf),
            )
        platform[path.name] = {k: v for k, v in got.items() if not k.startswith("_")}
        r, g = np.asarray(ref["rows"]).reshape(-1, 6), np.asarray(got["rows"]).reshape(-1, 6)
        detections += len(r)
        m, pairs = _match_pairs(r, g, conf)
        acc["ious"] += m["ious"]
        acc["score_diffs"] += m["score_diffs"]
        acc["same"] += [float(s) for s in m["same_class"]]
        unmatched += m["unmatched"]
        # Instances tied in score with another of their class survive NMS by sort order alone: the
        # two models may keep different anchors, so their masks or keypoints are not compared.
        tied_ref, tied_got = tied(r), tied(g)
        for i, j in pairs:
            skip = bool(tied_ref[i] or tied_got[j])
            acc["tied"].append(float(skip))
            if skip:
                continue
            if task == "segment":
                acc["mask_ious"].append(_mask_iou(ref["_masks"][i], got["_masks"][j]))
            else:
                ka, kb = np.asarray(ref["keypoints"][i]), np.asarray(got["keypoints"][j])
                acc["kpt_dists"].append(float(np.linalg.norm(ka[:, :2] - kb[:, :2], axis=1).max()))
    summary: dict[str, Any] = {"images": len(images), "task": task, **diffs, "conf": conf}
    summary["max_abs_diff"] = max(diffs.values()) if diffs else 0.0
    if task == "classify":
        summary.update(top1_agreement=top1 / len(images), top5_agreement=top5 / len(images))
        return summary, platform
    summary.update(
        detections=detections,
        matched=len(acc["ious"]),
        min_iou=min(acc["ious"]) if acc["ious"] else None,
        max_score_diff=max(acc["score_diffs"]) if acc["score_diffs"] else None,
        matched_same_class=float(np.mean(acc["same"])) if acc["same"] else None,
        tied=int(sum(acc["tied"])),
        unmatched=unmatched,
        nms_iou=NMS_IOU,
    )
    if task == "segment":
        ious = acc["mask_ious"]
        summary.update(min_mask_iou=min(ious) if ious else None, mean_mask_iou=float(np.mean(ious)) if ious else None)
    else:
        summary["max_kpt_dist_px"] = max(acc["kpt_dists"]) if acc["kpt_dists"] else None
    return summary, platform


def _raw_diffs(task: str, a: list[np.ndarray], b: list[np.ndarray], nc: int) -> dict[str, float]:
    """Max absolute difference per part of the output: boxes (input px), scores, then the task's own rows."""
    if task == "classify":
        return {"max_prob_diff": float(np.abs(a[0] - b[0]).max())}
    d = np.abs(a[0] - b[0])
    found = {"max_box_diff_px": float(d[:, :4].max()), "max_score_diff_raw": float(d[:, 4 : 4 + nc].max())}
    if task == "segment":
        found["max_coef_diff"] = float(d[:, 4 + nc :].max()) if d.shape[1] > 4 + nc else 0.0
        found["max_proto_diff"] = float(np.abs(a[1] - b[1]).max())
    else:
        kpts = d[:, 4 + nc :]
        dims = 3 if kpts.shape[1] % 3 == 0 else 2
        xy = np.concatenate([kpts[:, k::dims] for k in (0, 1)], 1)
        found["max_kpt_diff_px"] = float(xy.max()) if xy.size else 0.0
        found["max_kpt_score_diff"] = float(kpts[:, 2::3].max()) if dims == 3 and kpts.size else 0.0
    return found


def metric(
    task: str, model_path: str | Path, data: Path, imgsz: int, batch: int, out_dir: Path, name: str
) -> dict[str, float]:
    """The task metric on the validation split: segment/pose box and mask/pose mAP50-95; classify top-1/top-5."""
    results = validate(task, model_path, data, imgsz, batch, out_dir, name)
    if task == "classify":
        return {"value": float(results.top1), "top5": float(results.top5)}
    own = results.seg if task == "segment" else results.pose
    return {"value": float(own.map), "box": float(results.box.map)}


def verdict(
    task: str, raw: dict[str, Any], pt: dict[str, float], ex: dict[str, float], tol: dict[str, float]
) -> list[str]:
    """Each tolerance the export exceeds; empty means it passes."""
    failures: list[str] = []

    def over(key: str, limit: float, what: str) -> None:
        value = raw.get(key)
        if value is not None and value > limit:
            failures.append(f"{what} differ by {value:.4g} > {limit}")

    def under(key: str, limit: float, what: str) -> None:
        value = raw.get(key)
        if value is not None and value < limit:
            failures.append(f"{what} {value:.4f} < {limit}")

    if task == "classify":
        over("max_prob_diff", tol["prob"], "probabilities")
        under("top1_agreement", tol["top1"], "top-1 agreement")
        under("top5_agreement", tol["top5"], "top-5 agreement")
    else:
        over("max_box_diff_px", tol["box_px"], "box outputs")
        over("max_score_diff_raw", tol["score"], "score outputs")
        over("max_score_diff", tol["score_diff"], "matched detections' scores")
        under("min_iou", tol["min_iou"], "a matched box has IoU")
        if raw.get("unmatched"):
            failures.append(f"{raw['unmatched']} detection(s) clearly above the threshold in only one model")
    if task == "segment":
        over("max_coef_diff", tol["score"] * 10, "mask coefficients")
        over("max_proto_diff", tol["score"] * 10, "mask prototypes")
        under("mean_mask_iou", tol["mask_iou"], "mean IoU of matched masks")
    if task == "pose":
        over("max_kpt_diff_px", tol["kpt_px"], "keypoint outputs")
        over("max_kpt_score_diff", tol["score"], "keypoint visibility scores")
        over("max_kpt_dist_px", tol["kpt_dist_px"], "matched keypoints")
    for key in ("value", "box"):
        if key in pt and abs(ex[key] - pt[key]) > tol["metric"]:
            what = METRICS[task] if key == "value" else "mAP50-95 (box)"
            failures.append(f"{what} moved by {ex[key] - pt[key]:+.4f} (limit {tol['metric']})")
    return failures
