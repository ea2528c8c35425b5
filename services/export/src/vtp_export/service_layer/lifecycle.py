"""The worker's side of an export: claim, stages, lease renewal, completion, requeue after a crash.

Every write is fenced by (export id, attempt, lease owner): a worker that lost its export
(deleted, or requeued after its lease expired) changes nothing and publishes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vtp_contracts.base import ObjectRef
from vtp_contracts.catalog import EXPORT_COMPLETED, EXPORT_PROGRESS, EXPORT_REQUESTED
from vtp_contracts.events.exports import ExportCompleted, ExportProgress, ParityReport
from vtp_export.domain.model import Export, Status
from vtp_export.service_layer.commands import requested_event
from vtp_export.service_layer.unit_of_work import ExportUnitOfWork, NewUow


@dataclass
class Outcome:
    """How an attempt ended, as the worker reports it."""

    succeeded: bool
    artifact: dict[str, Any] | None = None  # uri, sha256, size_bytes
    parity: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


async def claim(new_uow: NewUow, export_id: uuid.UUID, attempt: int, owner: str, lease: float) -> Export | None:
    async with new_uow() as uow:
        export = await uow.repo.claim(export_id, attempt, owner, timedelta(seconds=lease), datetime.now(UTC))
        await uow.commit()
    return export


async def renew(new_uow: NewUow, export_id: uuid.UUID, attempt: int, owner: str, lease: float) -> bool:
    async with new_uow() as uow:
        held = await uow.repo.renew(export_id, attempt, owner, datetime.now(UTC) + timedelta(seconds=lease))
        await uow.commit()
    return held


async def enter_stage(new_uow: NewUow, export_id: uuid.UUID, attempt: int, owner: str, stage: str) -> bool:
    now = datetime.now(UTC)
    async with new_uow() as uow:
        export = await uow.repo.held(export_id, attempt, owner)
        if export is None:
            return False
        export.stage = stage
        await uow.repo.save(export)
        await uow.publish(
            EXPORT_PROGRESS,
            ExportProgress(
                export_id=export.id,
                project_id=export.project_id,
                job_id=export.job_id,
                attempt=attempt,
                stage=stage,
                format=export.format,
                time=now,
            ),
        )
        await uow.commit()
    return True


async def complete(new_uow: NewUow, export_id: uuid.UUID, attempt: int, owner: str, outcome: Outcome) -> bool:
    """Record the end and announce `export.completed` in one transaction (the package is uploaded before)."""
    now = datetime.now(UTC)
    async with new_uow() as uow:
        export = await uow.repo.held(export_id, attempt, owner)
        if export is None:
            return False
        export.status = Status.SUCCEEDED if outcome.succeeded else Status.FAILED
        export.artifact, export.parity = outcome.artifact, outcome.parity
        export.package_metadata = outcome.metadata
        export.error_code, export.error_message = outcome.error_code, outcome.error_message
        export.timings = {**export.timings, **outcome.timings}
        export.finished_at, export.stage, export.lease_owner, export.lease_expires_at = now, None, None, None
        if outcome.succeeded and export.parity_passed:  # parity not_run (CoreML off macOS) is never the default
            await uow.repo.lock_job(export.job_id)
            export.is_default = await uow.repo.default_of(export.job_id) is None  # the job's first success
        await uow.repo.save(export)
        await uow.publish(EXPORT_COMPLETED, completed_event(export, now))
        await uow.commit()
    return True


def completed_event(export: Export, now: datetime) -> ExportCompleted:
    artifact = ObjectRef(**export.artifact) if export.artifact else None
    parity = ParityReport(**summary(export.parity)) if export.parity else None
    return ExportCompleted(
        export_id=export.id,
        project_id=export.project_id,
        job_id=export.job_id,
        status="succeeded" if export.status == Status.SUCCEEDED else "failed",
        format=export.format,
        artifact=artifact,
        parity=parity,
        error_code=export.error_code,
        error_message=(export.error_message or "")[:2000] or None,
        completed_at=now,
        attempt=export.attempt,
        version=export.version,
        is_default=export.is_default,
    )


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The event's share of the stored parity report."""
    raw = report.get("raw") or {}
    metric = report.get("metric") or {}
    delta = {metric["name"]: float(metric["delta"])} if metric.get("name") and metric.get("delta") is not None else {}
    passed = bool(report.get("passed"))
    return {
        "passed": passed,
        "status": report.get("status") or ("passed" if passed else "failed"),
        "images_compared": int(raw.get("images", 0)),
        "max_abs_diff": raw.get("max_abs_diff"),
        "metric_delta": delta,
        "precision": report.get("precision"),
        "min_box_iou": raw.get("min_iou"),
        "max_score_diff": raw.get("max_score_diff"),
        "class_agreement": raw.get("class_agreement"),
        "unmatched": raw.get("unmatched"),
        "failures": list(report.get("failures", [])),
    }


async def requeue_or_fail(uow: ExportUnitOfWork, export: Export, reason: str, max_attempts: int) -> None:
    """The attempt's worker or child died: the next attempt goes to the group, or the export fails."""
    now = datetime.now(UTC)
    export.lease_owner, export.lease_expires_at, export.stage = None, None, None
    if export.attempt >= max_attempts:
        export.status, export.finished_at = Status.FAILED, now
        export.error_code = "EXPORTER_CRASHED"
        export.error_message = f"{reason}; gave up after {export.attempt} attempt(s)"
        await uow.repo.save(export)
        await uow.publish(EXPORT_COMPLETED, completed_event(export, now))
        return
    export.status, export.attempt = Status.QUEUED, export.attempt + 1
    await uow.repo.save(export)
    await uow.publish(EXPORT_REQUESTED, requested_event(export, now))


async def requeue_held(
    new_uow: NewUow, export_id: uuid.UUID, attempt: int, owner: str, reason: str, max_attempts: int
) -> None:
    async with new_uow() as uow:
        export = await uow.repo.held(export_id, attempt, owner)
        if export is not None:
            await requeue_or_fail(uow, export, reason, max_attempts)
            await uow.commit()


async def requeue_expired(new_uow: NewUow, max_attempts: int) -> int:
    """Watchdog round: exports whose worker stopped renewing its lease are requeued (or failed)."""
    async with new_uow() as uow:
        expired = await uow.repo.expired(datetime.now(UTC))
        for export in expired:
            await requeue_or_fail(uow, export, f"exporter {export.lease_owner} went silent", max_attempts)
        await uow.commit()
    return len(expired)
