"""Translation between gRPC and the Open Inference Protocol's service layer: status codes, metadata, tensors."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import numpy as np

from vtp_inference.adapters.model_cache import Loaded
from vtp_inference.entrypoints.access_http import OipRefusal
from vtp_inference.entrypoints.oip_proto import grpc_service_pb2 as pb
from vtp_inference.service_layer.oip import OipError, check_finite, invalid
from vtp_inference.service_layer.tensors import TensorError, check_input

STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
# Triton answers UNAVAILABLE for a model that is not ready; REST keeps the protocol's 400.
BY_CODE = {"model_not_ready": grpc.StatusCode.UNAVAILABLE}
R = TypeVar("R")


def grpc_status(exc: OipError) -> grpc.StatusCode:
    return BY_CODE.get(exc.code) or STATUS.get(exc.status, grpc.StatusCode.INTERNAL)


def refusals(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """An OipError becomes the call's status code (the code is also trailing metadata)."""

    @functools.wraps(method)
    async def call(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except OipError as exc:
            sent = exc.headers if isinstance(exc, OipRefusal) else {}  # Retry-After, RateLimit on a 429
            context.set_trailing_metadata((("vtp-error-code", exc.code), *metadata(sent)))
            await context.abort(grpc_status(exc), f"{exc.code}: {exc}")
            raise  # unreachable: abort raises

    return call


def metadata(headers: dict[str, str]) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in headers.items()]  # gRPC metadata keys are lower case


def dims(shape: list[Any]) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in shape]


def input_tensor(request: pb.ModelInferRequest, entry: Loaded) -> np.ndarray:
    m = entry.model
    if len(request.inputs) != 1:
        raise invalid(f"expected exactly one input, {m.input_name!r}")
    spec = request.inputs[0]
    shape = list(spec.shape)
    try:
        count = check_input(spec.name, spec.datatype, shape, m.input_name, m.input_shape)
    except TensorError as exc:
        raise invalid(str(exc)) from exc
    if request.raw_input_contents:
        raw = request.raw_input_contents[0]
        if len(request.raw_input_contents) != 1 or len(raw) != count * 4:
            raise invalid(f"raw_input_contents does not hold {count} FP32 values of the shape {shape}")
        tensor = np.frombuffer(raw, dtype="<f4").reshape(shape)
    else:
        values = spec.contents.fp32_contents
        if len(values) != count:
            raise invalid(f"fp32_contents holds {len(values)} values, not {count} for the shape {shape}")
        tensor = np.asarray(values, dtype=np.float32).reshape(shape)
    check_finite(tensor)
    return tensor
