"""ONNX Runtime: CPU, or CUDA when `onnxruntime-gpu` provides it.

Sessions run sequentially with a fixed number of intra-op threads and no inter-op pool, so
`workers x threads` bounds the cores a replica uses however many models are loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from vtp_inference.adapters.runtimes import ModelInvalid


class OnnxModel:
    platform = "onnxruntime_onnx"

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
        # Accelerated: the micro-batcher's `auto` mode batches this model (service_layer/batching.py).
        self.accelerated = "CUDAExecutionProvider" in self.session.get_providers()
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        self.input_shape: list[Any] = list(inp.shape)
        self.output_shape: list[Any] = list(out.shape)
        # Every output, (name, shape): segment models have two (detections, mask prototypes).
        self.outputs: list[tuple[str, list[Any]]] = [(o.name, list(o.shape)) for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run([self.output_name], {self.input_name: x})[0])

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output, in the model's order."""
        return [np.asarray(o) for o in self.session.run(None, {self.input_name: x})]
