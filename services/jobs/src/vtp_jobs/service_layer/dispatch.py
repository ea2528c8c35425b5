"""Hand a job attempt to the runners: the `job.requested.v1` command for the job's current attempt."""

from __future__ import annotations

from datetime import UTC, datetime

from vtp_contracts.base import ObjectRef
from vtp_contracts.catalog import JOB_REQUESTED
from vtp_contracts.events.jobs import CheckpointPointer, JobRequested, SplitOverride
from vtp_jobs.domain.model import Job
from vtp_jobs.service_layer.unit_of_work import JobsUnitOfWork


def requested_event(job: Job, resume: bool) -> JobRequested:
    point = job.resume_point() if resume else None
    base = job.base_checkpoint  # every attempt carries it: one that cannot resume starts from it again
    return JobRequested(
        job_id=job.id,
        project_id=job.project_id,
        attempt=job.attempt,
        name=job.name,
        framework=job.framework,
        task_type=job.task_type,
        model=job.model,
        dataset_id=job.dataset_id,
        snapshot_id=job.snapshot_id,
        snapshot_content_hash=job.snapshot_content_hash,
        split_fingerprint=job.split_fingerprint,
        split=SplitOverride.model_validate(job.split) if job.split else None,
        config=job.config,
        advanced_config=job.advanced_config,
        priority=job.priority,
        resume_from=CheckpointPointer(uri=point["uri"], sha256=point["sha256"], epoch=point["epoch"])
        if point
        else None,
        base_checkpoint=ObjectRef(uri=base["uri"], sha256=base["sha256"], size_bytes=base["size_bytes"])
        if base
        else None,
        requested_at=datetime.now(UTC),
    )


async def dispatch(uow: JobsUnitOfWork, job: Job, resume: bool = False) -> None:
    """Stage the command in the caller's transaction (outbox): it leaves only if the state change commits."""
    await uow.publish(JOB_REQUESTED, requested_event(job, resume))
