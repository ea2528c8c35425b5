"""The Open Inference Protocol for models with several outputs (segment: detections and prototypes).

A request names the outputs it wants (all of the model's when it names none, as Triton does); the
response carries each in the order asked: REST as JSON data or binary tensor data in the order of the
JSON header, gRPC in `raw_output_contents`. Both transports run them here.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from vtp_inference.adapters.model_cache import Loaded
from vtp_inference.adapters.runtimes import Model
from vtp_inference.service_layer.oip import invalid
from vtp_inference.service_layer.predicting import Predictor
from vtp_inference.service_layer.tasks import model_outputs
from vtp_inference.service_layer.tensors import InferRequest


def wanted_outputs(requested: list[str] | None, model: Model) -> list[str]:
    """The outputs to answer with, in the order asked; an unknown name is an invalid request."""
    names = [n for n, _ in model_outputs(model)]
    if not requested:
        return names
    unknown = [n for n in requested if n not in names]
    if unknown:
        raise invalid(f"unknown output(s) {unknown}; the model's outputs are {names}")
    return list(requested)


async def infer_outputs(
    predictor: Predictor, entry: Loaded, tensor: np.ndarray, names: list[str]
) -> tuple[list[tuple[str, np.ndarray]], float]:
    """The named outputs for a preprocessed tensor, and the seconds the runtime took (what usage meters)."""
    m = entry.model
    if names == [m.output_name]:  # the first output alone: the runtime's plain call (Triton's, micro-batched)
        output, seconds = await predictor.infer_timed(entry, tensor)
        return [(m.output_name, output)], seconds
    return await predictor.infer_outputs_timed(entry, tensor, names)  # several (segment's prototypes)


def encode_outputs(
    model: str,
    version: str,
    request: InferRequest,
    outputs: list[tuple[str, np.ndarray]],
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary data follows it."""
    described: list[dict[str, Any]] = []
    blobs: list[np.ndarray] = []
    for name, array in outputs:
        out: dict[str, Any] = {"name": name, "datatype": "FP32", "shape": list(array.shape)}
        if request.binary_output:
            raw = np.ascontiguousarray(array, dtype="<f4")
            out["parameters"] = {"binary_data_size": raw.nbytes}
            blobs.append(raw)
        else:
            out["data"] = array.astype(np.float32).ravel().tolist()
        described.append(out)
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": described}
    if request.id is not None:
        body["id"] = request.id
    if parameters:
        body["parameters"] = parameters
    head = json.dumps(body).encode()
    if not request.binary_output:
        return head, None
    parts: list[bytes | memoryview] = [head, *(blob.data for blob in blobs)]  # join reads their buffers: one copy
    return b"".join(parts), len(head)
