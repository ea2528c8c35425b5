"""Open Inference Protocol v2 over REST (KServe v2 / Triton), so `tritonclient.http` works unchanged.

Model name = the deployment's name (or id) in the caller's project; version = its export's
version. Tensors are the model's own interface (see docs/inference.md for the preprocessing).
Errors are problem+json that also carry the protocol's `error` field, which clients read.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from vtp_inference import __version__
from vtp_inference.adapters.model_cache import Loaded, ModelIntegrity, ModelInvalid
from vtp_inference.domain.model import DeploymentNotFound, NotServing
from vtp_inference.service_layer.predicting import Predictor
from vtp_inference.service_layer.tensors import TensorError, encode_response, parse_request
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import problems
from vtp_runtime.http.problems import PROBLEM_MEDIA_TYPE, problem_body
from vtp_runtime.storage import StorageError

Caller = Annotated[Principal, Depends(current_principal)]
HEADER_LENGTH = "Inference-Header-Content-Length"
PUBLIC = ("/v2/health/live", "/v2/health/ready")


class OipError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def oip_error_response(exc: OipError) -> JSONResponse:
    body = {**problem_body(exc.status, exc.code, "Inference request failed", str(exc)), "error": str(exc)}
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM_MEDIA_TYPE)


def _dims(shape: list[Any]) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in shape]


def build_oip_router(predictor: Predictor) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["open inference protocol"])

    async def model(caller: Principal, name: str, version: str | None, ready: bool = True) -> Loaded:
        try:
            entry = await predictor.loaded_by_name(caller, name)
        except DeploymentNotFound as exc:
            raise OipError(404, "model_not_found", f"unknown model {name!r}") from exc
        except NotServing as exc:
            raise OipError(400 if ready else 404, "model_not_ready", f"model {name!r}: {exc}") from exc
        except (ModelIntegrity, ModelInvalid, StorageError) as exc:
            raise OipError(503, "model_unavailable", f"model {name!r} cannot be loaded: {exc}") from exc
        if version is not None and version != str(entry.deployment.export_version):
            raise OipError(404, "model_version_not_found", f"model {name!r} has no version {version!r}")
        return entry

    @router.get("/health/live", summary="The process answers")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready", summary="Ready to serve (models load on first use)")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @router.get("", summary="Server metadata")
    async def server(caller: Caller) -> dict[str, Any]:
        return {"name": "vtp-inference", "version": __version__, "extensions": ["binary_tensor_data"]}

    @router.get("/models/{name}", summary="Model metadata", responses=problems(404, 503))
    @router.get(
        "/models/{name}/versions/{version}", summary="Model metadata of one version", responses=problems(404, 503)
    )
    async def metadata(name: str, caller: Caller, version: str | None = None) -> Any:
        try:
            entry = await model(caller, name, version)
        except OipError as exc:
            return oip_error_response(exc)
        m = entry.model
        return {
            "name": entry.deployment.name,
            "versions": [str(entry.deployment.export_version)],
            "platform": m.platform,
            "inputs": [{"name": m.input_name, "datatype": "FP32", "shape": _dims(m.input_shape)}],
            "outputs": [{"name": m.output_name, "datatype": "FP32", "shape": _dims(m.output_shape)}],
        }

    @router.get("/models/{name}/ready", summary="Model readiness", responses=problems(404, 503))
    @router.get(
        "/models/{name}/versions/{version}/ready",
        summary="Model readiness of one version",
        responses=problems(404, 503),
    )
    async def model_ready(name: str, caller: Caller, version: str | None = None) -> Any:
        try:
            await model(caller, name, version, ready=False)
        except OipError as exc:
            return oip_error_response(exc)
        return {"name": name, "ready": True}

    @router.post(
        "/models/{name}/infer",
        summary="Inference on the model's own tensors (JSON or binary)",
        responses=problems(400, 404, 503),
    )
    @router.post(
        "/models/{name}/versions/{version}/infer", summary="Inference on one version", responses=problems(400, 404, 503)
    )
    async def infer(name: str, request: Request, caller: Caller, version: str | None = None) -> Any:
        try:
            entry = await model(caller, name, version)
            length = request.headers.get(HEADER_LENGTH)
            body = await request.body()
            if length is not None and (not length.isdigit() or int(length) > len(body)):
                raise OipError(400, "invalid_inference_request", f"bad {HEADER_LENGTH}")
            m = entry.model
            try:
                parsed = parse_request(body, int(length) if length else None, m.input_name, m.input_shape)
            except TensorError as exc:
                raise OipError(400, "invalid_inference_request", str(exc)) from exc
            if parsed.outputs and parsed.outputs != [m.output_name]:
                raise OipError(400, "invalid_inference_request", f"the model's only output is {m.output_name!r}")
            if not math.isfinite(float(parsed.tensor.sum())):
                raise OipError(400, "invalid_inference_request", "the input holds NaN or infinity")
        except OipError as exc:
            return oip_error_response(exc)
        output = await predictor.infer(entry, parsed.tensor)
        content, header = encode_response(name, str(entry.deployment.export_version), parsed, m.output_name, output)
        if header is None:
            return Response(content, media_type="application/json")
        return Response(content, media_type="application/octet-stream", headers={HEADER_LENGTH: str(header)})

    return router
