"""Commands from the API: submit, cancel, restart. Each is one transaction with its event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.catalog import JOB_CANCEL_REQUESTED
from vtp_contracts.events.jobs import JobCancelRequested
from vtp_jobs.adapters.datasets_client import DatasetsClient, PinnedSnapshot, SnapshotProblem
from vtp_jobs.domain.fine_tuning import CheckpointChoice, CheckpointIncompatible, CheckpointNotFound, base_checkpoint
from vtp_jobs.domain.model import Job, JobNotFound, Status
from vtp_jobs.service_layer.dispatch import dispatch
from vtp_jobs.service_layer.events import NewUow
from vtp_runtime.auth import Principal


@dataclass
class Deps:
    new_uow: NewUow
    datasets: DatasetsClient


@dataclass(frozen=True)
class JobRequest:
    """A job request whose fields already passed validation."""

    name: str
    framework: str
    task_type: str
    model: str
    dataset_id: uuid.UUID
    snapshot_id: uuid.UUID | None
    split: dict[str, Any] | None
    config: dict[str, Any]
    advanced_config: dict[str, Any]
    priority: int
    fine_tune_from: CheckpointChoice | None = None


@dataclass(frozen=True)
class Problem:
    """One reason a request cannot be run; `pointer` is relative to the request body."""

    code: str
    pointer: str
    message: str


class RequestRejected(Exception):
    """The request passed validation but names what this project cannot use; every reason at once."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


async def submit_job(deps: Deps, caller: Principal, token: str, request: JobRequest) -> Job:
    """Resolve the checkpoint to start from and pin the snapshot, then write the job and its
    `job.requested` in one transaction."""
    problems: list[Problem] = []
    base: dict[str, Any] | None = None
    pinned: PinnedSnapshot | None = None
    if request.fine_tune_from is not None:
        try:
            base = await _base_checkpoint(deps, caller, request, request.fine_tune_from)
        except (CheckpointNotFound, CheckpointIncompatible) as exc:
            problems.append(Problem(exc.code, "/model", str(exc)))
    try:
        pinned = await deps.datasets.pin(token, request.dataset_id, request.snapshot_id, request.task_type)
    except SnapshotProblem as exc:
        problems.append(Problem(exc.code, exc.pointer, str(exc)))
    if problems or pinned is None:
        raise RequestRejected(problems)
    now = datetime.now(UTC)
    job = Job(
        uuid.uuid4(),
        caller.project_id,
        request.name,
        request.framework,
        request.task_type,
        request.model,
        request.dataset_id,
        pinned.snapshot_id,
        request.config,
        request.advanced_config,
        request.priority,
        now,
        split=request.split,
        snapshot_content_hash=pinned.content_hash,
        split_fingerprint=pinned.split_fingerprint,
        base_checkpoint=base,
    )
    job.transition(Status.QUEUED, job.attempt, now)
    async with deps.new_uow() as uow:
        await uow.repo.add(job)
        await dispatch(uow, job)
        await uow.commit()
    return job


async def _base_checkpoint(
    deps: Deps, caller: Principal, request: JobRequest, choice: CheckpointChoice
) -> dict[str, Any]:
    """The recorded checkpoint to fine-tune from, looked up in the caller's project only."""
    async with deps.new_uow() as uow:
        source = await uow.repo.get(caller.project_id, choice.job_id)
    return base_checkpoint(source, choice, request.framework, request.task_type)


async def get_job(deps: Deps, caller: Principal, job_id: uuid.UUID) -> Job:
    async with deps.new_uow() as uow:
        job = await uow.repo.get(caller.project_id, job_id)
    if job is None:
        raise JobNotFound(str(job_id))
    return job


async def cancel_job(deps: Deps, caller: Principal, job_id: uuid.UUID, reason: str | None) -> Job:
    """A queued job ends at once; a running one is stopped by its runner at the next batch boundary."""
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        job = await uow.repo.get(caller.project_id, job_id, lock=True)
        if job is None:
            raise JobNotFound(str(job_id))
        job.request_cancel(now)
        # Every runner reads this; the one holding the job stops it, the others remember not to start it.
        await uow.publish(
            JOB_CANCEL_REQUESTED,
            JobCancelRequested(
                job_id=job.id, project_id=job.project_id, attempt=job.attempt, reason=reason, requested_at=now
            ),
        )
        await uow.repo.save(job)
        await uow.commit()
    return job


async def restart_job(deps: Deps, caller: Principal, job_id: uuid.UUID, resume: bool) -> Job:
    """A new attempt of a finished job, from its last checkpoint when `resume` and one exists."""
    async with deps.new_uow() as uow:
        job = await uow.repo.get(caller.project_id, job_id, lock=True)
        if job is None:
            raise JobNotFound(str(job_id))
        job.restart(datetime.now(UTC))
        await dispatch(uow, job, resume=resume and job.resume_point() is not None)
        await uow.repo.save(job)
        await uow.commit()
    return job


async def list_jobs(
    deps: Deps, caller: Principal, status: str | None, dataset_id: uuid.UUID | None, limit: int, offset: int
) -> tuple[list[Job], int]:
    async with deps.new_uow() as uow:
        return await uow.repo.search(caller.project_id, status, dataset_id, limit, offset)


async def job_metrics(deps: Deps, caller: Principal, job_id: uuid.UUID) -> list[dict[str, Any]]:
    job = await get_job(deps, caller, job_id)
    async with deps.new_uow() as uow:
        return await uow.repo.epochs(job.id)


async def job_logs(
    deps: Deps,
    caller: Principal,
    job_id: uuid.UUID,
    level: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    job = await get_job(deps, caller, job_id)
    async with deps.new_uow() as uow:
        return await uow.repo.logs(job.id, level, since, until, limit, offset)
