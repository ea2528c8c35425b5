"""Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`), so `tritonclient.grpc` works.

The same models, tensors and refusals as the REST transport (`oip_http`), on the service's own
gRPC port. The token travels as metadata (`authorization: Bearer <token>`); refusals become
gRPC status codes, with the platform's stable code first in the message and in the trailing
metadata `vtp-error-code`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import numpy as np

from vtp_inference import __version__
from vtp_inference.adapters.model_cache import Loaded
from vtp_inference.domain.model import Status
from vtp_inference.entrypoints.metered import record_request
from vtp_inference.entrypoints.oip_proto import grpc_service_pb2 as pb
from vtp_inference.entrypoints.oip_proto import model_config_pb2 as config
from vtp_inference.entrypoints.oip_proto.grpc_service_pb2_grpc import GRPCInferenceServiceServicer
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.oip import (
    OipError,
    answered_by,
    check_finite,
    check_outputs,
    invalid,
    repository_index,
    resolve_model,
)
from vtp_inference.service_layer.predicting import Predictor, served_versions
from vtp_inference.service_layer.tensors import TensorError, check_input
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.auth import Principal, TokenVerifier, VerifierUnavailable

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


def _refusals(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """An OipError becomes the call's status code (the code is also trailing metadata)."""

    @functools.wraps(method)
    async def call(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except OipError as exc:
            context.set_trailing_metadata((("vtp-error-code", exc.code),))
            await context.abort(grpc_status(exc), f"{exc.code}: {exc}")
            raise  # unreachable: abort raises

    return call


def _dims(shape: list[Any]) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in shape]


def _tensor(request: pb.ModelInferRequest, entry: Loaded) -> np.ndarray:
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
    check_outputs([o.name for o in request.outputs], m.output_name)
    check_finite(tensor)
    return tensor


class OipServicer(GRPCInferenceServiceServicer):
    def __init__(self, predictor: Predictor, new_uow: NewUow, verifier: TokenVerifier, meter: Meter) -> None:
        self._predictor, self._new_uow, self._verifier, self._meter = predictor, new_uow, verifier, meter

    async def _caller(self, context: grpc.aio.ServicerContext) -> Principal:
        token = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, rest = value.partition(" ")
                token = rest.strip() if scheme.lower() == "bearer" and rest.strip() else None
        if token is None:
            raise OipError(401, "unauthorized", "send the metadata authorization: Bearer <token>")
        try:
            principal = await self._verifier.verify(token)
        except VerifierUnavailable as exc:
            raise OipError(503, "auth_unavailable", str(exc)) from exc
        if principal is None:
            raise OipError(401, "invalid_token", "the token is unknown or revoked")
        return principal

    async def _model(
        self, context: grpc.aio.ServicerContext, name: str, version: str, ready: bool = True, split: bool = True
    ) -> Loaded:
        caller = await self._caller(context)
        return await resolve_model(self._predictor, caller, name, version or None, ready=ready, split=split)

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    @_refusals
    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        await self._caller(context)
        return pb.ServerMetadataResponse(name="vtp-inference", version=__version__, extensions=[])

    @_refusals
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        try:
            await self._model(context, request.name, request.version, ready=False)
        except OipError as exc:
            if exc.status != 404:  # unknown, another project's, not serving, no such version: not ready
                raise
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    @_refusals
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        entry = await self._model(context, request.name, request.version, split=False)
        m, tensor = entry.model, pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=entry.deployment.name,
            versions=served_versions(entry),
            platform=m.platform,
            inputs=[tensor(name=m.input_name, datatype="FP32", shape=_dims(m.input_shape))],
            outputs=[tensor(name=m.output_name, datatype="FP32", shape=_dims(m.output_shape))],
        )

    @_refusals
    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Any) -> pb.ModelConfigResponse:
        entry = await self._model(context, request.name, request.version)
        m = entry.model
        return pb.ModelConfigResponse(
            config=config.ModelConfig(
                name=entry.deployment.name,
                platform=m.platform,
                max_batch_size=0,  # the batch dimension is part of the declared shape
                input=[config.ModelInput(name=m.input_name, data_type=config.TYPE_FP32, dims=_dims(m.input_shape))],
                output=[config.ModelOutput(name=m.output_name, data_type=config.TYPE_FP32, dims=_dims(m.output_shape))],
            )
        )

    @_refusals
    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Any) -> pb.RepositoryIndexResponse:
        caller = await self._caller(context)
        index = pb.RepositoryIndexResponse()
        for d in await repository_index(self._new_uow, caller):
            ready = d.status == Status.READY
            if request.ready and not ready:
                continue
            state = "READY" if ready else "UNAVAILABLE"
            index.models.add(name=d.name, version=str(d.export_version or ""), state=state, reason=d.error_code or "")
        return index

    @_refusals
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        started = time.perf_counter()
        caller = await self._caller(context)
        entry = await resolve_model(self._predictor, caller, request.model_name, request.model_version or None)
        size = request.ByteSize()
        try:
            tensor = _tensor(request, entry)
        except OipError as exc:  # the caller's model: metered (an unknown one is not)
            record_request(self._meter, caller, entry.deployment.id, started, images=0, bytes_in=size, error=exc.code)
            raise
        output, seconds = await self._predictor.infer_timed(entry, tensor)
        images = int(tensor.shape[0])
        record_request(
            self._meter, caller, entry.deployment.id, started, images=images, bytes_in=size, compute_seconds=seconds
        )
        response = pb.ModelInferResponse(
            model_name=request.model_name, model_version=str(entry.deployment.export_version), id=request.id
        )
        response.outputs.add(name=entry.model.output_name, datatype="FP32", shape=list(output.shape))
        response.raw_output_contents.append(np.ascontiguousarray(output, dtype="<f4").tobytes())
        for key, value in answered_by(entry).items():  # which export answered (a traffic split has two)
            response.parameters[key].string_param = value
        return response
