"""OpenVINO on the CPU, in f32 (as the export's parity check and its predict.py run it: CPUs with
bf16 would otherwise run bf16), with a fixed number of inference threads."""

from __future__ import annotations

from typing import Any

import numpy as np
import openvino as ov

from vtp_inference.adapters.runtimes import ModelInvalid


class OpenVinoModel:
    platform = "openvino"

    def __init__(self, xml: bytes, weights: bytes, threads: int) -> None:
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        try:
            core = ov.Core()
            model = core.read_model(model=xml, weights=ov.Tensor(np.frombuffer(weights, np.uint8)))
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError with its own messages
            raise ModelInvalid(f"OpenVINO cannot load the model: {exc}") from exc
        inp, out = self.compiled.inputs[0], self.compiled.outputs[0]
        # Ultralytics' IR names its outputs after traced ops (a segment model's prototypes: `input`), or not
        # at all: they get the ONNX export's names by position (`output0`, `output1`), as metadata.json declares.
        self.input_name, self.output_name = _name(inp, "images"), "output0"
        self.input_shape: list[Any] = _dims(inp.get_partial_shape())
        self.output_shape: list[Any] = _dims(out.get_partial_shape())
        # Every output, (name, shape): segment models have two (detections, mask prototypes).
        self.outputs: list[tuple[str, list[Any]]] = [
            (f"output{k}", _dims(o.get_partial_shape())) for k, o in enumerate(self.compiled.outputs)
        ]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.compiled(x)[self.compiled.outputs[0]])

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output, in the model's order."""
        result = self.compiled(x)
        return [np.asarray(result[o]) for o in self.compiled.outputs]


def _dims(shape: Any) -> list[Any]:
    return [d.get_length() if d.is_static else "?" for d in shape]


def _name(port: Any, default: str) -> str:
    """The ONNX export's name when the port carries it among others, else its first name, else that name."""
    names = sorted(port.get_names())
    return default if default in names or not names else str(names[0])
