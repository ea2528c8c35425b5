"""Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`), so `tritonclient.grpc` works.

The same models, tensors and refusals as the REST transport (`oip_http`), on the service's own
gRPC port. The token travels as metadata (`authorization: Bearer <token>`); refusals become
gRPC status codes, with the platform's stable code first in the message and in the trailing
metadata `vtp-error-code`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import numpy as np

from vtp_inference import __version__
from vtp_inference.adapters.model_cache import Loaded
from vtp_inference.adapters.runtimes import ModelInvalid
from vtp_inference.domain.model import Status
from vtp_inference.entrypoints.access_http import OipRefusal, oip_admit, oip_scope
from vtp_inference.entrypoints.metered import record_request
from vtp_inference.entrypoints.observed import GRPC_INFER, observe
from vtp_inference.entrypoints.oip_grpc_codec import dims, input_tensor, metadata, refusals
from vtp_inference.entrypoints.oip_proto import grpc_service_pb2 as pb
from vtp_inference.entrypoints.oip_proto import model_config_pb2 as config
from vtp_inference.entrypoints.oip_proto.grpc_service_pb2_grpc import GRPCInferenceServiceServicer
from vtp_inference.service_layer.access import Access, AccessError
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.oip import (
    OipError,
    answered_by,
    repository_index,
    resolve_model,
)
from vtp_inference.service_layer.oip_outputs import infer_outputs, wanted_outputs
from vtp_inference.service_layer.predicting import Predictor, served_versions
from vtp_inference.service_layer.tasks import model_outputs
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.auth import Principal


class OipServicer(GRPCInferenceServiceServicer):
    def __init__(self, predictor: Predictor, new_uow: NewUow, access: Access, meter: Meter) -> None:
        self._predictor, self._new_uow, self._access, self._meter = predictor, new_uow, access, meter

    async def _caller(self, context: grpc.aio.ServicerContext) -> Principal:
        """A project token or an API key: `authorization: Bearer <credential>`, or `api-key: <key>`."""
        credential = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, rest = value.partition(" ")
                credential = rest.strip() if scheme.lower() == "bearer" and rest.strip() else None
            elif key == "api-key" and isinstance(value, str) and credential is None:
                credential = value.strip() or None
        if credential is None:
            raise OipError(401, "unauthorized", "send the metadata authorization: Bearer <token or key>")
        try:
            return await self._access.authenticate(credential)
        except AccessError as exc:
            raise OipRefusal(exc) from exc

    async def _model(
        self, context: grpc.aio.ServicerContext, name: str, version: str, ready: bool = True, split: bool = True
    ) -> tuple[Principal, Loaded]:
        caller = await self._caller(context)
        entry = await resolve_model(self._predictor, caller, name, version or None, ready=ready, split=split)
        oip_scope(self._access, caller, entry.deployment.id)  # a key for another deployment: PERMISSION_DENIED
        return caller, entry

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    @refusals
    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        await self._caller(context)
        return pb.ServerMetadataResponse(name="vtp-inference", version=__version__, extensions=[])

    @refusals
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        try:
            await self._model(context, request.name, request.version, ready=False)
        except OipError as exc:
            if exc.status != 404:  # unknown, another project's, not serving, no such version: not ready
                raise
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    @refusals
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        _, entry = await self._model(context, request.name, request.version, split=False)
        m, tensor = entry.model, pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=entry.deployment.name,
            versions=served_versions(entry),
            platform=m.platform,
            inputs=[tensor(name=m.input_name, datatype="FP32", shape=dims(m.input_shape))],
            outputs=[tensor(name=n, datatype="FP32", shape=dims(shape)) for n, shape in model_outputs(m)],
        )

    @refusals
    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Any) -> pb.ModelConfigResponse:
        _, entry = await self._model(context, request.name, request.version)
        m = entry.model
        return pb.ModelConfigResponse(
            config=config.ModelConfig(
                name=entry.deployment.name,
                platform=m.platform,
                max_batch_size=0,  # the batch dimension is part of the declared shape
                input=[config.ModelInput(name=m.input_name, data_type=config.TYPE_FP32, dims=dims(m.input_shape))],
                output=[
                    config.ModelOutput(name=n, data_type=config.TYPE_FP32, dims=dims(shape))
                    for n, shape in model_outputs(m)
                ],
            )
        )

    @refusals
    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Any) -> pb.RepositoryIndexResponse:
        caller = await self._caller(context)
        index = pb.RepositoryIndexResponse()
        for d in await repository_index(self._new_uow, caller):
            ready = d.status == Status.READY
            if (request.ready and not ready) or not self._reaches(caller, d.id):
                continue
            state = "READY" if ready else "UNAVAILABLE"
            index.models.add(name=d.name, version=str(d.export_version or ""), state=state, reason=d.error_code or "")
        return index

    def _reaches(self, caller: Principal, deployment_id: uuid.UUID) -> bool:
        try:
            oip_scope(self._access, caller, deployment_id)
        except OipError:
            return False
        return True

    @refusals
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        started = time.perf_counter()
        caller, entry = await self._model(context, request.model_name, request.model_version)
        size = request.ByteSize()
        try:
            tensor = input_tensor(request, entry)
            names = wanted_outputs([o.name for o in request.outputs], entry.model)  # none named: every output
            admission = await oip_admit(self._access, caller, entry.deployment.id, int(tensor.shape[0]))
        except OipError as exc:  # the caller's model: metered (an unknown one is not)
            record_request(self._meter, caller, entry.deployment.id, started, images=0, bytes_in=size, error=exc.code)
            raise
        try:
            produced, seconds = await infer_outputs(self._predictor, entry, tensor, names)
        except ModelInvalid as exc:  # an external runtime (Triton) failed mid-request
            raise OipError(503, "model_unavailable", f"model {request.model_name!r} cannot answer: {exc}") from exc
        finally:
            await admission.release()
        context.set_trailing_metadata(metadata(admission.headers))  # RateLimit-Policy, RateLimit
        images = int(tensor.shape[0])
        record_request(
            self._meter, caller, entry.deployment.id, started, images=images, bytes_in=size, compute_seconds=seconds
        )
        response = pb.ModelInferResponse(
            model_name=request.model_name, model_version=str(entry.deployment.export_version), id=request.id
        )
        for output_name, output in produced:  # raw_output_contents in the outputs' order
            response.outputs.add(name=output_name, datatype="FP32", shape=list(output.shape))
            response.raw_output_contents.append(np.ascontiguousarray(output, dtype="<f4").tobytes())
        for key, value in answered_by(entry).items():  # which export answered (a traffic split has two)
            response.parameters[key].string_param = value
        observe(GRPC_INFER, entry.deployment.id, time.perf_counter() - started)
        return response
