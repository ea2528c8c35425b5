"""POST /api/v1/deployments/{id}/predict: multipart `file` (repeated), a raw image/* body, or JSON base64."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import UploadFile

from vtp_inference.adapters.model_cache import Loaded, ModelIntegrity, ModelInvalid
from vtp_inference.domain.model import DeploymentNotFound, NotServing, Problem, RequestRefused
from vtp_inference.entrypoints.access_http import admitted, check_scope
from vtp_inference.entrypoints.http import not_found, refused
from vtp_inference.entrypoints.metered import declared_bytes, record_request
from vtp_inference.entrypoints.observed import PREDICT, observe
from vtp_inference.service_layer.access import Access
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.predicting import Params, Predictor
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.openapi import problems
from vtp_runtime.http.problems import ProblemError
from vtp_runtime.metrics import METRICS
from vtp_runtime.storage import StorageError

Caller = Annotated[Principal, Depends(current_principal)]
PARAMS = ("conf", "iou", "max_det", "classes", "imgsz")


def _number(
    raw: dict[str, Any], key: str, kind: type, low: float, high: float, default: Any, found: list[Problem]
) -> Any:
    value = raw.get(key)
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        found.append(Problem(f"/{key}", "invalid_parameter", f"{key} must be a {kind.__name__}"))
        return default
    if not low <= number <= high or (key in ("conf", "iou") and number == 0):
        found.append(Problem(f"/{key}", "invalid_parameter", f"{key} must be in ({low}, {high}]"))
    return number


def parse_params(raw: dict[str, Any], entry: Loaded) -> Params:
    """Every parameter checked, all problems at once; the deployment's defaults where absent."""
    d, found = entry.deployment, list[Problem]()
    conf = _number(raw, "conf", float, 0, 1, d.conf, found)
    iou = _number(raw, "iou", float, 0, 1, d.iou, found)
    max_det = _number(raw, "max_det", int, 1, 1000, d.max_det, found)
    imgsz = _number(raw, "imgsz", int, 32, 4096, None, found)
    served = int(d.model_meta["imgsz"])
    if imgsz is not None and imgsz != served:
        found.append(Problem("/imgsz", "imgsz_not_supported", f"this export takes {served} px inputs only"))
    classes: list[int] | None = None
    given = raw.get("classes")
    if given not in (None, "", []):
        parts = given if isinstance(given, list) else [given]
        tokens = [t for p in parts for t in str(p).split(",") if t.strip()]
        try:
            classes = [int(t) for t in tokens]
        except ValueError:
            found.append(Problem("/classes", "invalid_parameter", "classes are class ids (integers)"))
        names = d.model_meta["names"]
        if classes is not None and any(str(c) not in names for c in classes):
            found.append(Problem("/classes", "invalid_parameter", f"class ids are 0..{len(names) - 1}"))
    if found:
        raise RequestRefused(found)
    return Params(conf, iou, max_det, classes)


async def _body(request: Request, limit: int) -> bytes:
    """The whole body, refused (413) once it grows past `limit` rather than read into memory."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, "payload_too_large", "Payload too large", f"at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_request(request: Request, max_images: int, max_bytes: int) -> tuple[list[bytes], dict[str, Any]]:
    """The images and the parameters (query, then form fields or JSON fields)."""
    query = request.query_params
    raw: dict[str, Any] = {k: query.get(k) for k in PARAMS if k in query}
    if "classes" in query:
        raw["classes"] = query.getlist("classes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    images: list[bytes] = []
    if kind == "multipart/form-data":
        form = await request.form(max_files=max_images, max_fields=50)
        for key in PARAMS:
            if key in form:
                raw[key] = form.getlist(key) if key == "classes" else form.get(key)
        for item in form.getlist("file"):
            if not isinstance(item, UploadFile):
                raise ProblemError(422, "validation_failed", "Validation failed", "`file` must be a file part")
            images.append(await item.read(max_bytes + 1))
    elif kind.startswith("image/"):
        images.append(await _body(request, max_bytes + 1))
    elif kind == "application/json":
        try:
            body = json.loads(await _body(request, max_images * max_bytes * 4 // 3 + 65536))  # base64: 4/3
        except ValueError as exc:
            raise ProblemError(422, "validation_failed", "Validation failed", f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("images"), list):
            raise ProblemError(422, "validation_failed", "Validation failed", 'expected {"images": [base64, ...]}')
        raw.update({k: body[k] for k in PARAMS if k in body})
        for i, item in enumerate(body["images"]):
            try:
                images.append(base64.b64decode(str(item), validate=True))
            except (binascii.Error, ValueError) as exc:
                found = [Problem(f"/images/{i}", "image_undecodable", "not base64")]
                raise RequestRefused(found) from exc
    else:
        raise ProblemError(415, "unsupported_media_type", "Unsupported media type", "multipart, image/* or JSON")
    if not images:
        raise ProblemError(422, "no_images", "No images", "send at least one image (field `file`)")
    if len(images) > max_images:
        raise ProblemError(422, "too_many_images", "Too many images", f"at most {max_images} per request")
    return images, raw


def build_predict_router(
    predictor: Predictor, max_images: int, max_bytes: int, meter: Meter, access: Access
) -> APIRouter:
    router = APIRouter(prefix="/api/v1/deployments", tags=["predict"])

    def metered(caller: Principal, deployment_id: uuid.UUID, request: Request, started: float, **counts: Any) -> None:
        size = declared_bytes(request.headers.get("content-length"))
        record_request(meter, caller, deployment_id, started, bytes_in=size, **counts)

    @router.post(
        "/{deployment_id}/predict",
        summary="Predict on one or more images (multipart `file`, raw image/* body, or JSON base64)",
        responses=problems(400, 404, 409, 413, 415, 422, 503),
    )
    async def predict(deployment_id: uuid.UUID, request: Request, response: Response, caller: Caller) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            answer = await _predict(deployment_id, request, caller, started, response)
        except ProblemError as exc:
            METRICS.inc("vtp_inference_predict_errors_total", code=exc.code)
            if exc.code != "deployment_not_found":  # not the caller's deployment: nothing to meter
                metered(caller, deployment_id, request, started, images=0, error=exc.code)
            raise
        except Exception:
            metered(caller, deployment_id, request, started, images=0, error="internal_error")
            raise
        compute = sum(image["timings_ms"]["inference"] for image in answer["images"]) / 1000
        metered(caller, deployment_id, request, started, images=len(answer["images"]), compute_seconds=compute)
        deployment = str(deployment_id)
        METRICS.inc("vtp_inference_predict_requests_total", deployment=deployment)
        METRICS.inc("vtp_inference_predict_images_total", len(answer["images"]), deployment=deployment)
        observe(PREDICT, deployment_id, time.perf_counter() - started)  # its _count is the requests answered
        return answer

    async def _predict(
        deployment_id: uuid.UUID, request: Request, caller: Principal, started: float, response: Response
    ) -> dict[str, Any]:
        check_scope(access, caller, deployment_id)  # a key for another deployment: 403, nothing loaded
        try:
            entry = await predictor.loaded(caller, deployment_id)
        except DeploymentNotFound as exc:
            raise not_found(exc) from exc
        except NotServing as exc:
            raise ProblemError(409, "deployment_not_ready", "The deployment is not serving", str(exc)) from exc
        except (ModelIntegrity, ModelInvalid, StorageError) as exc:
            raise ProblemError(503, "model_unavailable", "The model cannot be loaded", str(exc)) from exc
        try:
            images, raw = await read_request(request, max_images, max_bytes)
            params = parse_params(raw, entry)
            async with admitted(access, caller, deployment_id, len(images), response.headers):
                results = await predictor.predict(entry, images, params)
        except RequestRefused as exc:
            raise refused(exc.problems, "The request cannot be predicted") from exc
        except ModelInvalid as exc:  # an external runtime (Triton) failed mid-request
            raise ProblemError(503, "model_unavailable", "The model cannot answer", str(exc)) from exc
        d = entry.deployment
        return {
            "deployment_id": str(d.id),
            "name": d.name,
            "export_id": str(d.export_id),
            "export_version": d.export_version,
            "task": d.task_type,
            "parameters": vars(params),
            "images": results,
            "total_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    return router
