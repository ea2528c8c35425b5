"""REST routes under /api/v1/jobs and /api/v1/trainers."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import ValidationError

from vtp_jobs.adapters.datasets_client import DatasetsUnavailable
from vtp_jobs.domain.fine_tuning import CheckpointChoice
from vtp_jobs.domain.model import JobAlreadyFinished, JobNotFinished, JobNotFound
from vtp_jobs.entrypoints.schemas import CancelIn, CheckpointIn, JobIn, JobOut, JobPage, RestartIn
from vtp_jobs.service_layer import commands
from vtp_jobs.service_layer.commands import Deps, JobRequest, RequestRejected
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.fields import Offset
from vtp_runtime.http.openapi import json_body, problems
from vtp_runtime.http.problems import ProblemError, validation_errors
from vtp_trainers.registry import config_schema, trainers_summary
from vtp_trainers.validate import checkpoint_ref, validate_job_config

Caller = Annotated[Principal, Depends(current_principal)]
STATUSES = "^(pending|queued|running|completed|failed|cancelled|requeued)$"
_MODEL_TAG = re.compile(r"^#/body/model/(name|checkpoint)(?=/|$)")


def _invalid(errors: list[dict[str, str]]) -> ProblemError:
    return ProblemError(422, "validation_failed", "Validation failed", f"{len(errors)} problem(s)", errors)


def _parse(body: dict[str, Any]) -> JobRequest:
    """Shape and trainer rules checked together, so every problem is reported at once."""
    errors: list[dict[str, str]] = []
    parsed: JobIn | None = None
    try:
        parsed = JobIn.model_validate(body)
    except ValidationError as exc:
        errors += [{**e, "pointer": _body_pointer(e["pointer"])} for e in validation_errors(exc.errors())]
    config, advanced, model = body.get("config", {}), body.get("advanced_config", {}), body.get("model", "")
    if isinstance(config, dict) and isinstance(advanced, dict):
        _, problems = validate_job_config(
            str(body.get("framework", "ultralytics")),
            str(body.get("task_type", "")),
            str(model.get("job_id", "")) if isinstance(model, dict) else str(model),
            config,
            advanced,
        )
        seen = {e["pointer"] for e in errors}
        errors += [
            {"pointer": "#/body" + p.pointer, "code": p.code, "message": p.message}
            for p in problems
            if not any(s == "#/body" + p.pointer or s.startswith(f"#/body{p.pointer}/") for s in seen)
        ]
    if errors or parsed is None:
        raise _invalid(errors)
    model_name, fine_tune_from = _model(parsed.model)
    return JobRequest(
        parsed.name,
        parsed.framework,
        parsed.task_type,
        model_name,
        parsed.dataset_id,
        parsed.snapshot_id,
        parsed.split.model_dump() if parsed.split else None,
        parsed.config,
        parsed.advanced_config,
        parsed.priority,
        fine_tune_from,
    )


def _body_pointer(pointer: str) -> str:
    """A pointer into the request body, without the shape tag `model`'s union puts into its locations."""
    return _MODEL_TAG.sub("#/body/model", pointer.replace("#/", "#/body/", 1))


def _model(model: str | CheckpointIn) -> tuple[str, CheckpointChoice | None]:
    """The job's `model` (a name, or the earlier job's id) and the checkpoint to fine-tune from, if any."""
    if isinstance(model, CheckpointIn):
        return str(model.job_id), CheckpointChoice(model.job_id, model.checkpoint)
    ref = checkpoint_ref(model)
    return (model, None) if ref is None else (ref, CheckpointChoice(uuid.UUID(ref)))


def _job_problem(exc: Exception) -> ProblemError:
    if isinstance(exc, JobNotFound):
        return ProblemError(404, "job_not_found", "Job not found", str(exc))
    if isinstance(exc, JobNotFinished):
        return ProblemError(409, "job_not_finished", "Only a finished job can be restarted", str(exc))
    return ProblemError(409, "job_finished", "The job has already finished", str(exc))


JOB_ERRORS = (JobNotFound, JobNotFinished, JobAlreadyFinished)


def build_router(deps: Deps) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["jobs"])

    @router.post(
        "/jobs",
        status_code=201,
        response_model=JobOut,
        summary="Submit a training job",
        responses=problems(422),
        openapi_extra=json_body(JobIn),
    )
    async def submit(request: Request, caller: Caller, body: Annotated[dict[str, Any], Body()]) -> JobOut:
        job_request = _parse(body)
        token = request.headers["authorization"].partition(" ")[2].strip()
        try:
            job = await commands.submit_job(deps, caller, token, job_request)
        except RequestRejected as exc:
            raise _invalid(
                [{"pointer": "#/body" + p.pointer, "code": p.code, "message": p.message} for p in exc.problems]
            ) from exc
        except DatasetsUnavailable as exc:
            raise ProblemError(503, "datasets_unavailable", "Datasets service unavailable", str(exc)) from exc
        return JobOut.of(job)

    @router.get("/jobs", response_model=JobPage)
    async def search(
        caller: Caller,
        status: Annotated[str | None, Query(pattern=STATUSES)] = None,
        dataset_id: uuid.UUID | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> JobPage:
        jobs, total = await commands.list_jobs(deps, caller, status, dataset_id, limit, offset)
        return JobPage(items=[JobOut.of(j) for j in jobs], total=total, limit=limit, offset=offset)

    @router.get("/jobs/{job_id}", response_model=JobOut, responses=problems(404))
    async def get(job_id: uuid.UUID, caller: Caller) -> JobOut:
        try:
            return JobOut.of(await commands.get_job(deps, caller, job_id))
        except JOB_ERRORS as exc:
            raise _job_problem(exc) from exc

    @router.post("/jobs/{job_id}/cancel", response_model=JobOut, status_code=202, responses=problems(404, 409))
    async def cancel(job_id: uuid.UUID, caller: Caller, body: CancelIn | None = None) -> JobOut:
        try:
            return JobOut.of(await commands.cancel_job(deps, caller, job_id, body.reason if body else None))
        except JOB_ERRORS as exc:
            raise _job_problem(exc) from exc

    @router.post("/jobs/{job_id}/restart", response_model=JobOut, status_code=202, responses=problems(404, 409))
    async def restart(job_id: uuid.UUID, caller: Caller, body: RestartIn | None = None) -> JobOut:
        try:
            return JobOut.of(await commands.restart_job(deps, caller, job_id, body.resume if body else True))
        except JOB_ERRORS as exc:
            raise _job_problem(exc) from exc

    @router.get(
        "/jobs/{job_id}/metrics", summary="Every epoch's train and val metrics, per attempt", responses=problems(404)
    )
    async def metrics(job_id: uuid.UUID, caller: Caller) -> dict[str, Any]:
        try:
            rows = await commands.job_metrics(deps, caller, job_id)
        except JOB_ERRORS as exc:
            raise _job_problem(exc) from exc
        attempts: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            attempts.setdefault(row.pop("attempt"), []).append({k: v for k, v in row.items() if k != "job_id"})
        return {"job_id": str(job_id), "attempts": [{"attempt": a, "epochs": e} for a, e in sorted(attempts.items())]}

    @router.get("/jobs/{job_id}/logs", responses=problems(404))
    async def logs(
        job_id: uuid.UUID,
        caller: Caller,
        level: Annotated[str | None, Query(pattern="^(debug|info|warning|error)$")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        try:
            rows = await commands.job_logs(deps, caller, job_id, level, since, until, limit, offset)
        except JOB_ERRORS as exc:
            raise _job_problem(exc) from exc
        return {
            "job_id": str(job_id),
            "lines": [{k: v for k, v in r.items() if k not in ("job_id", "id")} for r in rows],
            "limit": limit,
            "offset": offset,
        }

    @router.get("/trainers", summary="Trainer frameworks, their tasks, models and presets")
    async def trainers(caller: Caller) -> list[dict[str, Any]]:
        return trainers_summary()

    @router.get(
        "/trainers/{framework}/config-schema",
        summary="JSON Schema of basic and advanced config",
        responses=problems(404),
    )
    async def schema(framework: str, caller: Caller) -> dict[str, Any]:
        try:
            return config_schema(framework)
        except LookupError as exc:
            raise ProblemError(404, "unknown_framework", "Unknown trainer framework", framework) from exc

    return router
