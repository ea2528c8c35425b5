"""Run this exported detection model on images with numpy, OpenCV and the format's runtime.

    python predict.py IMAGE [IMAGE ...] [--conf 0.25] [--iou 0.7] [--json]

Preprocessing, output layout and postprocessing are described in metadata.json; this file
implements them exactly as the platform does (square letterbox, RGB, 0-1 scaling, NCHW;
class-aware NMS), so its detections equal the platform's (see samples/expected.json).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
META: dict[str, Any] = json.loads((HERE / "metadata.json").read_text())
MAX_WH = 7680  # class offset of class-aware NMS (Ultralytics' max_wh)
MAX_NMS = 30000  # candidates entering NMS at most (Ultralytics' max_nms)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Resize keeping the aspect ratio, pad to size x size with grey 114, centred."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return image, (new_h / h, new_w / w), (left, top)


def preprocess(image_bgr: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    padded, gain, pad = letterbox(image_bgr, size)
    x = padded[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0  # BGR->RGB, HWC->NCHW, 0-1
    return np.ascontiguousarray(x), gain, pad


class Model:
    """The format's runtime behind one call: NCHW float32 in, the raw output tensor out."""

    def __init__(self) -> None:
        fmt, path = META["export"]["format"], HERE / META["model_file"]
        self.fmt = fmt
        if fmt == "onnx":
            import onnxruntime as ort

            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            self.input = self.session.get_inputs()[0].name
        elif fmt == "torchscript":
            import torch

            self.module = torch.jit.load(str(path), map_location="cpu").eval()  # type: ignore[no-untyped-call]
        elif fmt == "openvino":
            import openvino as ov

            core = ov.Core()
            xml = next(path.glob("*.xml"))
            config = {"PERFORMANCE_HINT": "LATENCY"}
            if not META["export"]["options"].get("half"):  # CPUs with bf16 would otherwise run bf16
                config["INFERENCE_PRECISION_HINT"] = "f32"
            self.compiled = core.compile_model(core.read_model(xml), "CPU", config)
        elif fmt == "ncnn":
            import ncnn

            self.ncnn = ncnn
            self.net = ncnn.Net()
            self.net.opt.use_vulkan_compute = False
            param = next(path.glob("*.param"))
            self.net.load_param(str(param))
            self.net.load_model(str(param.with_suffix(".bin")))
        elif fmt == "mnn":
            import MNN  # as Ultralytics runs it: precision "low", CPU

            threads = ((os.cpu_count() or 1) + 1) // 2
            rt = MNN.nn.create_runtime_manager(({"precision": "low", "backend": "CPU", "numThread": threads},))
            self.mnn = MNN
            self.net = MNN.nn.load_module_from_file(str(path), [], [], runtime_manager=rt, rearrange=True)
        elif fmt == "litert":
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(str(path), num_threads=min(8, max(1, (os.cpu_count() or 1) - 1)))
            self.interpreter.allocate_tensors()
            self.input_index = self.interpreter.get_input_details()[0]["index"]
            self.output_index = self.interpreter.get_output_details()[0]["index"]
        elif fmt == "paddle":
            import paddle.inference as pdi

            config = pdi.Config(str(next(path.rglob("*.json"))), str(next(path.rglob("*.pdiparams"))))
            self.predictor = pdi.create_predictor(config)
            self.handle = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        elif fmt == "coreml":  # Core ML runs on macOS only: this branch is not exercised by the platform's checks
            import coremltools as ct

            self.coreml = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
            self.coreml_input = self.coreml.get_spec().description.input[0].name
        else:
            raise SystemExit(f"predict.py does not know the format {fmt}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.fmt == "onnx":
            return np.asarray(self.session.run(None, {self.input: x})[0])
        if self.fmt == "torchscript":
            import torch

            with torch.no_grad():
                y = self.module(torch.from_numpy(x))
            return np.asarray((y[0] if isinstance(y, list | tuple) else y).numpy())
        if self.fmt == "openvino":
            return np.asarray(next(iter(self.compiled(x).values())))
        if self.fmt == "mnn":
            x = np.ascontiguousarray(x, dtype=np.float32)
            return np.array(self.net.onForward([self.mnn.expr.const(x.ctypes.data, list(x.shape))])[0].read())
        if self.fmt == "litert":  # boxes come out divided by the input size (exact under int8): scale them back
            self.interpreter.set_tensor(self.input_index, x)
            self.interpreter.invoke()
            y = np.array(self.interpreter.get_tensor(self.output_index))
            y[:, [0, 2]] *= x.shape[3]
            y[:, [1, 3]] *= x.shape[2]
            return y
        if self.fmt == "paddle":
            self.handle.copy_from_cpu(x)
            self.predictor.run()
            return np.asarray(self.predictor.get_output_handle(self.predictor.get_output_names()[0]).copy_to_cpu())
        if self.fmt == "coreml":
            from PIL import Image

            image = Image.fromarray(np.uint8(x[0].transpose(1, 2, 0) * 255))  # its input is an image, scaled inside
            out = self.coreml.predict({self.coreml_input: image})
            return np.asarray(next(v for v in out.values() if isinstance(v, np.ndarray)))
        outputs = []
        for sample in x:
            with self.net.create_extractor() as ex:
                ex.input(self.net.input_names()[0], self.ncnn.Mat(sample))
                outputs.append(np.array(ex.extract(sorted(self.net.output_names())[0])[1]))
        return np.stack(outputs)


def nms_keep(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Indices kept by class-aware greedy NMS, best first, computed as Ultralytics' torchvision NMS does.

    Every step is float32 as there: boxes offset by class * MAX_WH in float32 (which rounds their
    coordinates to 1/1024 px for class 1, 1/512 for classes 2-3, ...), areas and IoUs in float32, a
    stable descending sort, suppressed when the IoU is above `iou` (compared in double). Offsetting
    in float64 instead moved IoUs near the threshold across it, so another of two near-identical
    boxes survived (0.015 px away from the platform's)."""
    shifted = boxes.astype(np.float32) + (classes[:, None] * MAX_WH).astype(np.float32)
    x1, y1, x2, y2 = (np.ascontiguousarray(c) for c in shifted.T)
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")[:MAX_NMS]
    zero = np.float32(0)
    chosen: list[int] = []
    while order.size and len(chosen) < max_det:
        i = int(order[0])
        chosen.append(i)
        rest = order[1:]
        w = np.maximum(zero, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(zero, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):  # empty boxes: NaN, never suppressed
            overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(overlap.astype(np.float64) > iou)]
    return np.asarray(chosen, dtype=np.int64)


def postprocess(raw: np.ndarray, conf: float, iou: float, max_det: int = 300) -> np.ndarray:
    """[4 + classes, anchors] -> rows of x1, y1, x2, y2, score, class in input pixels (float32)."""
    pred = raw.T.astype(np.float32)
    scores, classes = pred[:, 4:].max(1), pred[:, 4:].argmax(1)
    keep = scores > conf
    xywh, scores, classes = pred[keep, :4], scores[keep], classes[keep]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    chosen = nms_keep(boxes, scores, classes, iou, max_det)
    return np.concatenate([boxes[chosen], scores[chosen, None], classes[chosen, None].astype(np.float32)], 1)


def to_image(rows: np.ndarray, gain: tuple[float, float], pad: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Boxes of `rows` (input pixels) in original image pixels, clipped: minus the padding, divided by
    the per-axis gain, in float32 as the platform's scale_boxes does."""
    (gain_y, gain_x), (pad_x, pad_y), (h, w) = gain, pad, shape
    boxes = rows[:, :4].astype(np.float32)
    boxes -= np.array([pad_x, pad_y, pad_x, pad_y], dtype=np.float32)
    boxes /= np.array([gain_x, gain_y, gain_x, gain_y], dtype=np.float32)
    return np.clip(boxes, np.float32(0), np.array([w, h, w, h], dtype=np.float32))


def predict(model: Model, image_bgr: np.ndarray, conf: float = 0.25, iou: float = 0.7) -> list[dict[str, Any]]:
    """Detections in original image pixels: box [x1, y1, x2, y2], score, class id and name."""
    size = int(META["input"]["imgsz"])
    x, gain, pad = preprocess(image_bgr, size)
    rows = postprocess(model(x)[0], conf, iou)
    boxes = to_image(rows, gain, pad, image_bgr.shape[:2])
    names = META["names"]
    return [
        {"box": [float(v) for v in box], "score": float(row[4]), "class": int(row[5]), "name": names[str(int(row[5]))]}
        for row, box in zip(rows, boxes, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--json", action="store_true", help="one JSON document: image name -> detections")
    args = parser.parse_args()
    model = Model()
    results = {}
    for name in args.images:
        image = cv2.imread(name)
        if image is None:
            raise SystemExit(f"cannot read {name}")
        results[Path(name).name] = predict(model, image, args.conf, args.iou)
    if args.json:
        print(json.dumps(results))
        return
    for name, detections in results.items():
        for d in detections:
            print(name, d["name"], f"{d['score']:.3f}", " ".join(f"{v:.1f}" for v in d["box"]))


if __name__ == "__main__":
    main()
