"""Open Inference Protocol v2 over REST (KServe v2 / Triton), so `tritonclient.http` works unchanged.

Model name = the deployment's name (or id) in the caller's project; version = its export's
version. Tensors are the model's own interface (see docs/inference.md for the preprocessing).
Errors are problem+json that also carry the protocol's `error` field, which clients read.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from vtp_inference import __version__
from vtp_inference.adapters.model_cache import Loaded
from vtp_inference.adapters.runtimes import ModelInvalid
from vtp_inference.entrypoints.access_http import OipRefusal, oip_admit, oip_scope
from vtp_inference.entrypoints.metered import declared_bytes, record_request
from vtp_inference.entrypoints.observed import INFER, observe
from vtp_inference.service_layer.access import Access
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.oip import (
    OipError,
    answered_by,
    check_finite,
    invalid,
    resolve_model,
)
from vtp_inference.service_layer.oip_outputs import encode_outputs, infer_outputs, wanted_outputs
from vtp_inference.service_layer.predicting import Predictor, served_versions
from vtp_inference.service_layer.tasks import model_outputs
from vtp_inference.service_layer.tensors import TensorError, parse_request
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import problems
from vtp_runtime.http.problems import PROBLEM_MEDIA_TYPE, problem_body

Caller = Annotated[Principal, Depends(current_principal)]
HEADER_LENGTH = "Inference-Header-Content-Length"
PUBLIC = ("/v2/health/live", "/v2/health/ready")


def oip_error_response(exc: OipError) -> JSONResponse:
    body = {**problem_body(exc.status, exc.code, "Inference request failed", str(exc)), "error": str(exc)}
    headers = exc.headers if isinstance(exc, OipRefusal) else None  # RateLimit, Retry-After
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _dims(shape: list[Any]) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in shape]


def build_oip_router(predictor: Predictor, meter: Meter, access: Access) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["open inference protocol"])

    async def model(caller: Principal, name: str, version: str | None, ready: bool = True) -> Loaded:
        entry = await resolve_model(predictor, caller, name, version, ready=ready)
        oip_scope(access, caller, entry.deployment.id)  # a key for another deployment: 403
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
            entry = await resolve_model(predictor, caller, name, version, split=False)
            oip_scope(access, caller, entry.deployment.id)
        except OipError as exc:
            return oip_error_response(exc)
        m = entry.model
        return {
            "name": entry.deployment.name,
            "versions": served_versions(entry),
            "platform": m.platform,
            "inputs": [{"name": m.input_name, "datatype": "FP32", "shape": _dims(m.input_shape)}],
            "outputs": [{"name": n, "datatype": "FP32", "shape": _dims(s)} for n, s in model_outputs(m)],
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
        started = time.perf_counter()
        entry: Loaded | None = None
        size = declared_bytes(request.headers.get("content-length"))
        try:
            entry = await model(caller, name, version)
            length = request.headers.get(HEADER_LENGTH)
            body = await request.body()
            size = len(body)
            if length is not None and (not length.isdigit() or int(length) > len(body)):
                raise invalid(f"bad {HEADER_LENGTH}")
            m = entry.model
            try:
                parsed = parse_request(body, int(length) if length else None, m.input_name, m.input_shape)
            except TensorError as exc:
                raise invalid(str(exc)) from exc
            names = wanted_outputs(parsed.outputs, m)
            check_finite(parsed.tensor)
            admission = await oip_admit(access, caller, entry.deployment.id, int(parsed.tensor.shape[0]))
        except OipError as exc:
            if entry is not None:  # the caller's model: metered (an unknown one is not)
                record_request(meter, caller, entry.deployment.id, started, images=0, bytes_in=size, error=exc.code)
            return oip_error_response(exc)
        try:
            produced, seconds = await infer_outputs(predictor, entry, parsed.tensor, names)  # entry is set
        except ModelInvalid as exc:  # an external runtime (Triton) failed mid-request
            record_request(
                meter, caller, entry.deployment.id, started, images=0, bytes_in=size, error="model_unavailable"
            )
            return oip_error_response(OipError(503, "model_unavailable", f"model {name!r} cannot answer: {exc}"))
        finally:
            await admission.release()
        images = int(parsed.tensor.shape[0])
        record_request(
            meter, caller, entry.deployment.id, started, images=images, bytes_in=size, compute_seconds=seconds
        )
        observe(INFER, entry.deployment.id, time.perf_counter() - started)
        version_out, answered = str(entry.deployment.export_version), answered_by(entry)
        content, header = encode_outputs(name, version_out, parsed, produced, answered)
        if header is None:
            return Response(content, media_type="application/json", headers=admission.headers)
        binary = {**admission.headers, HEADER_LENGTH: str(header)}
        return Response(content, media_type="application/octet-stream", headers=binary)

    return router
