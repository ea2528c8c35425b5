"""Open Inference Protocol v2 tensors: JSON data or the binary tensor data extension, both ways.

A request body is a JSON header, followed (when `Inference-Header-Content-Length` is sent) by
the raw bytes of the inputs that declare `binary_data_size`, in order. Only the model's own
interface is accepted: its one FP32 input, by name, with the shape it declares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np


class TensorError(Exception):
    """The request is not a valid inference request for this model."""


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    tensor: np.ndarray
    binary_output: bool
    outputs: list[str] | None


def _shape_ok(declared: list[Any], shape: list[int]) -> bool:
    if len(declared) != len(shape):
        return False
    return all(isinstance(d, str) or d in (-1, s) for d, s in zip(declared, shape, strict=True))


def check_input(name: Any, datatype: Any, shape: Any, input_name: str, declared: list[Any]) -> int:
    """The element count of a valid input for this model (its one FP32 input, of a shape it takes)."""
    if name != input_name:
        raise TensorError(f"unexpected input {name!r}; the model's input is {input_name!r}")
    if datatype != "FP32":
        raise TensorError(f"input {input_name!r} is FP32, not {datatype!r}")
    if (
        not isinstance(shape, list)
        or not all(isinstance(s, int) and s > 0 for s in shape)
        or not _shape_ok(declared, shape)
    ):
        raise TensorError(f"input shape {shape} does not fit the model's {declared}")
    return int(np.prod(shape))


def parse_request(body: bytes, header_length: int | None, input_name: str, declared: list[Any]) -> InferRequest:
    view = memoryview(body)  # slices without copying the (megabytes of) binary tensor data
    head, rest = (view[:header_length], view[header_length:]) if header_length is not None else (view, view[:0])
    try:
        request = json.loads(head.tobytes())
    except ValueError as exc:
        raise TensorError(f"the request header is not JSON: {exc}") from exc
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise TensorError(f"expected exactly one input, {input_name!r}")
    spec = inputs[0]
    shape = spec.get("shape")
    count = check_input(spec.get("name"), spec.get("datatype"), shape, input_name, declared)
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if size != count * 4 or len(rest) != size:
            raise TensorError(f"binary_data_size {size} does not match the shape {shape} and the body")
        tensor = np.frombuffer(rest, dtype="<f4").reshape(shape)
    else:
        try:
            tensor = np.asarray(spec.get("data"), dtype=np.float32).reshape(shape)
        except (TypeError, ValueError) as exc:
            raise TensorError(f"input data does not hold {count} FP32 values: {exc}") from exc
    wanted = request.get("outputs")
    binary = bool((request.get("parameters") or {}).get("binary_data_output"))
    names = None
    if isinstance(wanted, list):
        names = [str(o.get("name")) for o in wanted if isinstance(o, dict)]
        binary = binary or any((o.get("parameters") or {}).get("binary_data") for o in wanted if isinstance(o, dict))
    rid = request.get("id")
    return InferRequest(str(rid) if rid is not None else None, np.ascontiguousarray(tensor), binary, names)
