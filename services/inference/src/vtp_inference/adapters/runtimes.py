"""The runtimes behind one interface: NCHW float32 in, the raw output tensor out.

A deployment's runtime picks the adapter; each loads from the verified bytes of the model's
files (ONNX: the model; OpenVINO: the IR's xml and weights; Triton: the model and the export's
config.pbtxt) and translates its own errors into `ModelInvalid`. External runtimes (Triton) are
registered by the composition root when configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np


class ModelInvalid(Exception):
    """The model cannot be loaded, or its interface is not the one its metadata declares."""

    code = "MODEL_INVALID"


class RuntimeUnavailable(ModelInvalid):
    """An external runtime (Triton) cannot be reached: the model is not at fault."""

    code = "RUNTIME_UNAVAILABLE"


class Model(Protocol):
    platform: str
    input_name: str
    output_name: str
    input_shape: list[Any]
    output_shape: list[Any]

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class ExternalRuntime(Protocol):
    """A runtime serving from another process (Triton): models are loaded there per key, and released."""

    def load(self, files: list[bytes], key: str) -> Model: ...

    def release(self, key: str, model_sha256: str) -> None: ...


def load(
    runtime: str,
    files: list[bytes],
    threads: int,
    key: str = "",
    external: Mapping[str, ExternalRuntime] | None = None,
    adaptive: bool = False,
) -> Model:
    """The model on its runtime; `key` names it in an external runtime (the deployment's id).

    `adaptive`: an ONNX Runtime CPU model also runs on one thread when its job is granted one core.
    """
    if external and runtime in external:
        return external[runtime].load(files, key)
    if runtime == "onnxruntime":
        from vtp_inference.adapters.onnx_runtime import OnnxModel

        return OnnxModel(files[0], threads, adaptive)
    if runtime == "openvino":
        from vtp_inference.adapters.openvino_runtime import OpenVinoModel

        if len(files) != 2:
            raise ModelInvalid("an OpenVINO model is an xml file and its weights")
        return OpenVinoModel(files[0], files[1], threads)
    raise ModelInvalid(f"no runtime {runtime!r}")


def probe(model: Model, imgsz: int, classes: int) -> None:
    """The detect interface: [N, 3, imgsz, imgsz] in, [N, 4 + classes, anchors] out, finite on a blank image."""
    dims = model.input_shape[1:]
    if [d if isinstance(d, int) else -1 for d in dims] not in ([3, imgsz, imgsz], [3, -1, -1]):
        raise ModelInvalid(f"input shape {model.input_shape} is not [N, 3, {imgsz}, {imgsz}]")
    if len(model.output_shape) != 3 or model.output_shape[1] != 4 + classes:
        raise ModelInvalid(f"output shape {model.output_shape} is not [N, 4 + {classes}, anchors]")
    raw = model(np.zeros((1, 3, imgsz, imgsz), np.float32))
    if raw.ndim != 3 or raw.shape[1] != 4 + classes or not np.isfinite(raw).all():
        raise ModelInvalid("the model's output on a blank image is not finite detect rows")
