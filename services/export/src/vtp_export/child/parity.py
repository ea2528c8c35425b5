"""The parity gate: the exported model against the PyTorch checkpoint, output by output and by metric.

Both models see the same square-letterboxed tensors (as exports are built for one fixed input),
through Ultralytics' own loaders (`AutoBackend`) and postprocessing, so any difference comes
from the export alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

# Ultralytics' non_max_suppression runs torchvision's NMS only when torchvision is imported, and
# otherwise its own, whose sort (torch's unstable argsort) leaves equal scores in no defined order:
# then of two anchors tied in score either survives, and what it suppresses ripples on (predict.py,
# in stable order, then answered rows a few thousandths of a pixel away). torchvision's order is
# stable, as the inference service's and predict.py's are: the platform's detections are defined.
import torchvision  # noqa: F401
from ultralytics import YOLO  # type: ignore[attr-defined]
from ultralytics.data.augment import LetterBox
from ultralytics.nn.autobackend import AutoBackend
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import scale_boxes

from vtp_export.child import parity_ties

NMS_IOU = parity_ties.NMS_IOU


def load(path: str | Path) -> AutoBackend:
    backend: AutoBackend = AutoBackend(str(path), device=torch.device("cpu"), fp16=False, fuse=True, verbose=False)
    return backend


def tensor(image_path: Path, imgsz: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The platform's preprocessing: square letterbox, BGR->RGB, NCHW, 0-1."""
    image = cv2.imread(str(image_path))
    if image is None:
        raise ValueError(f"cannot read {image_path}")
    padded: np.ndarray = LetterBox(new_shape=(imgsz, imgsz), auto=False)(image=image)  # type: ignore[assignment]
    x = np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1)[None]).astype(np.float32) / 255.0
    return torch.from_numpy(x), image.shape[:2]


def raw_output(backend: AutoBackend, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        y = backend(x)
    while isinstance(y, list | tuple):
        y = y[0]
    return y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)


def detections(raw: np.ndarray, imgsz: int, shape: tuple[int, int], conf: float) -> np.ndarray:
    """Rows x1, y1, x2, y2, score, class in original image pixels (the platform's predictions)."""
    det = non_max_suppression(torch.from_numpy(raw), conf_thres=conf, iou_thres=NMS_IOU, max_det=300)[0]
    det[:, :4] = scale_boxes((imgsz, imgsz), det[:, :4], shape)
    return np.asarray(det.numpy(), dtype=np.float64)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9))


def match(ref: np.ndarray, got: np.ndarray, conf: float, margin: float) -> dict[str, Any]:
    """Greedy one-to-one matching by IoU; unmatched detections count only when clearly above `conf`."""
    ious, score_diffs, same_class = [], [], []
    used: set[int] = set()
    matched: set[int] = set()
    matrix = _iou_matrix(ref, got) if len(ref) and len(got) else np.zeros((len(ref), len(got)))
    for i in np.argsort(-ref[:, 4]) if len(ref) else []:
        # Class-aware NMS keeps one box per class at the same place: prefer the same class, then IoU.
        free = [j for j in range(len(got)) if j not in used and matrix[i, j] >= 0.5]
        if not free:
            continue
        j = max(free, key=lambda k: (int(got[k, 5]) == int(ref[i, 5]), matrix[i, k]))
        used.add(j)
        matched.add(int(i))
        ious.append(float(matrix[i, j]))
        score_diffs.append(abs(float(ref[i, 4] - got[j, 4])))
        same_class.append(int(ref[i, 5]) == int(got[j, 5]))
    clear = conf + margin
    unmatched = sum(1 for k, row in enumerate(ref) if k not in matched and row[4] > clear)
    unmatched += sum(1 for j, row in enumerate(got) if j not in used and row[4] > clear)
    return {"ious": ious, "score_diffs": score_diffs, "same_class": same_class, "unmatched": unmatched}


def class_decisions(a: np.ndarray, b: np.ndarray, conf: float, margin: float) -> tuple[int, int]:
    """(anchors whose class the checkpoint decides clearly, how many of them the export decides alike).

    An anchor counts when its best class scores above `conf` and beats the second by more than
    `margin`: with nearly tied classes (an undertrained model) the argmax flips on noise alone.
    """
    scores_a, scores_b = a[0, 4:], b[0, 4:]
    if scores_a.shape[0] < 2:
        return 0, 0
    top2 = np.sort(scores_a, axis=0)[-2:]
    decided = (top2[1] > conf) & (top2[1] - top2[0] > margin)
    agree = scores_a.argmax(0) == scores_b.argmax(0)
    return int(decided.sum()), int((agree & decided).sum())


def image_candidates(raw: np.ndarray, imgsz: int, shape: tuple[int, int], floor: float) -> parity_ties.Candidates:
    """Pre-NMS candidates of a raw output scoring above `floor`, boxes in original image pixels (as `detections`)."""

    def to_image(boxes: np.ndarray) -> np.ndarray:
        scaled = scale_boxes((imgsz, imgsz), torch.from_numpy(boxes), shape)
        return np.asarray(scaled.numpy() if isinstance(scaled, torch.Tensor) else scaled)

    return parity_ties.candidates(raw, floor, to_image)


def compare_detections(
    a: np.ndarray, b: np.ndarray, imgsz: int, shape: tuple[int, int], conf: float, margin: float, min_iou: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Both raw outputs through NMS; the detections tied within `margin` counted, the others matched."""
    ref, got = detections(a, imgsz, shape, conf), detections(b, imgsz, shape, conf)
    # Candidates down to conf - margin: one just under the threshold explains a detection just over it.
    floor = conf - margin
    cand_a, cand_b = image_candidates(a, imgsz, shape, floor), image_candidates(b, imgsz, shape, floor)
    tie_ref, tie_got = parity_ties.tied(ref, got, cand_a, cand_b, conf, margin, min_iou)
    m = match(ref[~tie_ref], got[~tie_got], conf, margin=0.02)
    return ref, got, {**m, "tied": int(tie_ref.sum()), "tied_export": int(tie_got.sum())}


def compare_outputs(
    pt: AutoBackend,
    exported: AutoBackend,
    images: list[Path],
    imgsz: int,
    conf: float,
    margin: float,
    min_iou: float = 0.99,
) -> tuple[dict[str, Any], dict[str, list[list[float]]]]:
    """Raw tensors and matched detections of both models on the same images; also the platform's
    detections with the export (what an inference service running it would answer), per image.

    Detections tied within the score tolerance `margin` (see `parity_ties`) are counted, not matched."""
    box_diff = score_diff_raw = 0.0
    ious: list[float] = []
    score_diffs: list[float] = []
    same: list[bool] = []
    decided = agreed = 0
    unmatched = detections_ref = tied_ref = tied_export = 0
    platform: dict[str, list[list[float]]] = {}
    for path in images:
        x, shape = tensor(path, imgsz)
        a, b = raw_output(pt, x), raw_output(exported, x)
        if a.shape != b.shape:
            raise ParityError(f"output shape {list(b.shape)} differs from the checkpoint's {list(a.shape)}")
        box_diff = max(box_diff, float(np.abs(a[:, :4] - b[:, :4]).max()))
        score_diff_raw = max(score_diff_raw, float(np.abs(a[:, 4:] - b[:, 4:]).max()))
        ref, got, m = compare_detections(a, b, imgsz, shape, conf, margin, min_iou)
        platform[path.name] = got.tolist()
        detections_ref += len(ref)
        tied_ref, tied_export = tied_ref + m["tied"], tied_export + m["tied_export"]
        ious += m["ious"]
        score_diffs += m["score_diffs"]
        same += m["same_class"]
        unmatched += m["unmatched"]
        d, g = class_decisions(a, b, conf, margin)
        decided, agreed = decided + d, agreed + g
    summary = {
        "images": len(images),
        "detections": detections_ref,
        "matched": len(ious),
        "tied": tied_ref,
        "tied_export": tied_export,
        "max_abs_diff": max(box_diff, score_diff_raw),
        "max_box_diff_px": box_diff,
        "max_score_diff_raw": score_diff_raw,
        "min_iou": min(ious) if ious else None,
        "mean_iou": float(np.mean(ious)) if ious else None,
        "max_score_diff": max(score_diffs) if score_diffs else None,
        "class_agreement": agreed / decided if decided else None,
        "class_decisions": decided,
        "matched_same_class": float(np.mean(same)) if same else None,
        "unmatched": unmatched,
        "conf": conf,
        "nms_iou": NMS_IOU,
    }
    return summary, platform


def metric(model_path: str | Path, data_yaml: Path, imgsz: int, batch: int, out_dir: Path, name: str) -> float:
    """mAP50-95 on the snapshot's validation split, square letterbox (rect=False)."""
    return float(validate("detect", model_path, data_yaml, imgsz, batch, out_dir, name).box.map)


def validate(task: str, model_path: str | Path, data: Path, imgsz: int, batch: int, out_dir: Path, name: str) -> Any:
    """Ultralytics' `val` of the model on the validation split: CPU, square letterbox, no plots."""
    model = YOLO(str(model_path), task=task)
    return model.val(
        data=str(data),
        imgsz=imgsz,
        batch=batch,
        rect=False,
        device="cpu",
        workers=0,
        plots=False,
        verbose=False,
        project=str(out_dir),
        name=name,
        exist_ok=True,
    )


def verdict(raw: dict[str, Any], pt_metric: float, export_metric: float, tol: dict[str, float]) -> list[str]:
    """Each tolerance the export exceeds; empty means it passes."""
    failures = []
    if raw["max_box_diff_px"] > tol["box_px"]:
        failures.append(f"box outputs differ by {raw['max_box_diff_px']:.4g} px > {tol['box_px']}")
    if raw["max_score_diff_raw"] > tol["score"]:
        failures.append(f"score outputs differ by {raw['max_score_diff_raw']:.4g} > {tol['score']}")
    if raw["min_iou"] is not None and raw["min_iou"] < tol["min_iou"]:
        failures.append(f"a matched box has IoU {raw['min_iou']:.4f} < {tol['min_iou']}")
    if raw["max_score_diff"] is not None and raw["max_score_diff"] > tol["score_diff"]:
        failures.append(f"a matched detection's score differs by {raw['max_score_diff']:.4g} > {tol['score_diff']}")
    if raw["class_agreement"] is not None and raw["class_agreement"] < tol["class_agreement"]:
        failures.append(f"class agreement {raw['class_agreement']:.3f} < {tol['class_agreement']}")
    if raw["unmatched"]:
        failures.append(f"{raw['unmatched']} detection(s) clearly above the threshold in only one model")
    if abs(export_metric - pt_metric) > tol["metric"]:
        failures.append(f"mAP50-95 moved by {export_metric - pt_metric:+.4f} (limit {tol['metric']})")
    return failures


class ParityError(Exception):
    pass
