"""ONNX Runtime: CPU, or CUDA when `onnxruntime-gpu` provides it.

Sessions run sequentially with a fixed number of intra-op threads and no inter-op pool, so the
cores a replica uses are bounded by the jobs the core scheduler lets run at once
(service_layer/cores.py), however many models are loaded.

An adaptive model (CPU only) has two sessions of the same graph: the `wide` one with every thread
for a job granted all the cores (one image alone: lowest latency), and a one-thread `narrow` one,
built on first use, for a job granted one core (images at once: each on its core, no thread waiting
at an operator's barrier for another).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import onnxruntime as ort

from vtp_inference.adapters.granted_cores import granted
from vtp_inference.adapters.runtimes import ModelInvalid


def _session(data: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    try:
        return ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for a corrupt graph
        raise ModelInvalid(f"ONNX Runtime cannot load the model: {exc}") from exc


class OnnxModel:
    platform = "onnxruntime_onnx"

    def __init__(self, data: bytes, threads: int, adaptive: bool = False) -> None:
        self.session = _session(data, threads)
        # Accelerated: the micro-batcher's `auto` mode batches this model (service_layer/batching.py).
        self.accelerated = "CUDAExecutionProvider" in self.session.get_providers()
        self.adaptive = adaptive and threads > 1 and not self.accelerated
        self.sessions = 2 if self.adaptive else 1  # what the model cache counts against its budget
        self._data: bytes | None = data if self.adaptive else None  # until the narrow session is built
        self._narrow: ort.InferenceSession | None = None
        self._building = threading.Lock()
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        self.input_shape: list[Any] = list(inp.shape)
        self.output_shape: list[Any] = list(out.shape)
        # Every output, (name, shape): segment models have two (detections, mask prototypes).
        self.outputs: list[tuple[str, list[Any]]] = [(o.name, list(o.shape)) for o in self.session.get_outputs()]

    def _current(self) -> ort.InferenceSession:
        """The session for this job's grant: the narrow one when granted one core, else the wide one."""
        if not self.adaptive or granted() != 1:
            return self.session
        if self._narrow is None:
            with self._building:
                if self._narrow is None and self._data is not None:
                    self._narrow, self._data = _session(self._data, 1), None
        return self._narrow or self.session

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._current().run([self.output_name], {self.input_name: x})[0])

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output, in the model's order."""
        return [np.asarray(o) for o in self._current().run(None, {self.input_name: x})]
