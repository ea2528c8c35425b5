"""Run this exported segment, pose or classify model on images with numpy, OpenCV and the format's runtime.

    python predict.py IMAGE [IMAGE ...] [--conf 0.25] [--iou 0.7] [--json]

metadata.json describes the preprocessing, the output layout and the postprocessing; this file
implements them as the platform does, so its answers equal the platform's (samples/expected.json):
- segment: square letterbox; NMS over boxes and class scores; each kept row's 32 mask
  coefficients times the prototypes, upsampled (bilinear) to the input, thresholded at 0, cropped
  to the box; its outer contours (OpenCV) in original image pixels;
- pose: square letterbox; NMS; each kept row's keypoints (x, y, visibility score) in image pixels;
- classify: shortest side resized to the input size (Pillow bilinear, as torchvision does),
  centre crop, RGB, 0-1; the output is already probabilities: the top 5.
The runtime (`Model`) and the letterbox come from predict_base.py (the detection predictor).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from predict_base import META, Model, nms_keep, preprocess

TASK = META["task"]


def outputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """Every output of the model (segment has two: detections with mask coefficients, prototypes)."""
    if model.fmt == "onnx":
        return [np.asarray(o) for o in model.session.run(None, {model.input: x})]
    if model.fmt == "openvino":
        result = model.compiled(x)
        return [np.asarray(result[o]) for o in model.compiled.outputs]
    if model.fmt == "torchscript":
        import torch

        with torch.no_grad():
            y = model.module(torch.from_numpy(x))
        return [np.asarray(t.numpy()) for t in (y if isinstance(y, list | tuple) else [y])]
    if model.fmt == "ncnn":
        names = sorted(model.net.output_names())
        found: list[list[np.ndarray]] = [[] for _ in names]
        for sample in x:
            with model.net.create_extractor() as ex:
                ex.input(model.net.input_names()[0], model.ncnn.Mat(sample))
                for k, name in enumerate(names):
                    found[k].append(np.array(ex.extract(name)[1]))
        return [np.stack(f) for f in found]
    return [model(x)]


def nms(pred: np.ndarray, nc: int, conf: float, iou: float, max_det: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """[4 + nc + extra, anchors] -> (rows x1, y1, x2, y2, score, class in input pixels, their extra columns)."""
    pred = pred.T.astype(np.float32)
    scores_all = pred[:, 4 : 4 + nc]
    classes = scores_all.argmax(1)
    scores = scores_all[np.arange(len(classes)), classes]
    keep = scores > conf
    xywh, scores, classes, extra = pred[keep, :4], scores[keep], classes[keep], pred[keep, 4 + nc :]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    chosen = nms_keep(boxes, scores, classes, iou, max_det)  # float32 class offsets, as the platform's NMS
    rows = np.concatenate([boxes[chosen], scores[chosen, None], classes[chosen, None]], 1).reshape(-1, 6)
    return rows, extra[chosen].reshape(len(chosen), -1)


def masks(protos: np.ndarray, coefs: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Binary masks (n, size, size): coefficients x prototypes, upsampled bilinearly, > 0, inside the box."""
    c, mh, mw = protos.shape
    logits = (coefs @ protos.reshape(c, -1)).reshape(-1, mh, mw)
    up = [
        cv2.resize(np.ascontiguousarray(logits[k : k + 512].transpose(1, 2, 0)), (size, size))
        for k in range(0, len(logits), 512)
    ]
    full = (
        np.concatenate([u.reshape(size, size, -1) for u in up], 2).transpose(2, 0, 1)
        if up
        else np.zeros((0, size, size))
    )
    r = np.arange(size, dtype=np.float32)
    inside_x = (r[None, :] >= boxes[:, 0:1]) & (r[None, :] < boxes[:, 2:3])
    inside_y = (r[None, :] >= boxes[:, 1:2]) & (r[None, :] < boxes[:, 3:4])
    return ((full > 0) & inside_y[:, :, None] & inside_x[:, None, :]).astype(np.uint8)


def to_image(points: np.ndarray, gain: tuple[float, float], pad: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """x, y in the first two columns (input pixels) -> original image pixels, clipped."""
    out = points.astype(np.float64).copy()
    out[..., 0] = np.clip((out[..., 0] - pad[0]) / gain[1], 0, shape[1])
    out[..., 1] = np.clip((out[..., 1] - pad[1]) / gain[0], 0, shape[0])
    return out


def classify_input(image_bgr: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    rgb = Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    w, h = rgb.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_w, new_h) != (w, h):
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)
    crop = np.asarray(rgb, dtype=np.float32)[top : top + size, left : left + size]
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None] / np.float32(255.0))


def predict(model: Any, image_bgr: np.ndarray, conf: float = 0.25, iou: float = 0.7) -> Any:
    """segment/pose: a list of {box, score, class, name, polygons | keypoints}; classify: {top5: [...]}."""
    size, names = int(META["input"]["imgsz"]), META["names"]
    if TASK == "classify":
        probs = outputs(model, classify_input(image_bgr, size))[0][0]
        top = np.argsort(-probs, kind="stable")[:5]
        return {"top5": [{"class": int(c), "name": names[str(int(c))], "score": float(probs[c])} for c in top]}
    x, gain, pad = preprocess(image_bgr, size)
    outs = outputs(model, x)
    rows, extra = nms(outs[0][0], len(names), conf, iou)
    shape = image_bgr.shape[:2]
    found: dict[str, list[Any]] = {}
    if TASK == "segment":
        binary = masks(outs[1][0], extra, rows[:, :4], size)
        keep = binary.reshape(len(binary), -1).any(1)
        rows, binary = rows[keep], binary[keep]
        found["polygons"] = [
            [
                to_image(c.reshape(-1, 2), gain, pad, shape).tolist()
                for c in cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
            ]
            for m in binary
        ]
    else:
        kpts = extra.reshape(len(rows), *META["kpt_shape"])
        found["keypoints"] = to_image(kpts, gain, pad, shape).tolist()
    boxes = to_image(rows[:, :4].reshape(-1, 2, 2), gain, pad, shape).reshape(-1, 4)
    return [
        {
            "box": box,
            "score": float(row[4]),
            "class": int(row[5]),
            "name": names[str(int(row[5]))],
            **{k: v[i] for k, v in found.items()},
        }
        for i, (row, box) in enumerate(zip(rows, boxes.tolist(), strict=True))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--json", action="store_true", help="one JSON document: image name -> answer")
    args = parser.parse_args()
    model = Model()
    results = {}
    for name in args.images:
        image = cv2.imread(name)
        if image is None:
            raise SystemExit(f"cannot read {name}")
        results[Path(name).name] = predict(model, image, args.conf, args.iou)
    print(json.dumps(results, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
