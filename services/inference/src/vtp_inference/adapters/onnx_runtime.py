"""ONNX Runtime behind the one call the predictor needs: NCHW float32 in, the raw output out.

Sessions run sequentially with a fixed number of intra-op threads and no inter-op pool, so
`workers x threads` bounds the cores a replica uses however many models are loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort


class ModelInvalid(Exception):
    """The model file cannot be loaded, or its interface is not the one its metadata declares."""


class OnnxModel:
    def __init__(self, data: bytes, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(data, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for a corrupt graph
            raise ModelInvalid(f"ONNX Runtime cannot load the model: {exc}") from exc
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        self.input_shape: list[Any] = list(inp.shape)
        self.output_shape: list[Any] = list(out.shape)

    def check(self, imgsz: int, classes: int) -> None:
        """The detect interface: [N, 3, imgsz, imgsz] in, [N, 4 + classes, anchors] out."""
        dims = self.input_shape[1:]
        if dims != [3, imgsz, imgsz] and not all(isinstance(d, str) for d in dims[1:]):
            raise ModelInvalid(f"input shape {self.input_shape} is not [N, 3, {imgsz}, {imgsz}]")
        if len(self.output_shape) != 3 or self.output_shape[1] != 4 + classes:
            raise ModelInvalid(f"output shape {self.output_shape} is not [N, 4 + {classes}, anchors]")
        probe = np.zeros((1, 3, imgsz, imgsz), np.float32)
        raw = self(probe)
        if raw.shape[1] != 4 + classes or not np.isfinite(raw).all():
            raise ModelInvalid("the model's output on a blank image is not finite detect rows")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run([self.output_name], {self.input_name: x})[0])
