"""Commands from the API: create (content-addressed), read, list, delete, make default."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.base import ObjectRef
from vtp_contracts.catalog import EXPORT_REQUESTED
from vtp_contracts.events.exports import ExportRequested
from vtp_export.adapters.jobs_client import CheckpointNotFound, JobsClient, ResolvedCheckpoint
from vtp_export.adapters.toolchains import Toolchains
from vtp_export.domain.formats import FORMATS, SUPPORTED_TASKS, Problem, normalise_options, task_format_reason
from vtp_export.domain.model import Export, ExportNotFound, ExportNotReady, ParityNotPassed, Status, content_key
from vtp_export.service_layer.unit_of_work import NewUow
from vtp_runtime.auth import Principal
from vtp_runtime.storage import ObjectStore, StorageError

_log = logging.getLogger(__name__)
DEBUG_OPTION = "debug_perturb"  # test stacks only (VTP_EXPORT_DEBUG_OPTIONS): corrupts the export on purpose


@dataclass
class Deps:
    new_uow: NewUow
    jobs: JobsClient
    toolchains: Toolchains
    store: ObjectStore
    debug_options: bool = False


@dataclass(frozen=True)
class ExportRequest:
    job_id: uuid.UUID
    checkpoint: str | int
    format: str
    options: dict[str, Any]


class RequestRefused(Exception):
    """Every reason the request cannot be done, each with its JSON pointer and code."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


async def create_export(deps: Deps, caller: Principal, token: str, request: ExportRequest) -> tuple[Export, bool]:
    """The export for this checkpoint, format and options: the existing one, or a new queued one (True)."""
    problems: list[Problem] = []
    spec = FORMATS.get(request.format)
    if spec is None:
        problems.append(Problem("/format", "format_unavailable", f"unknown format; known: {', '.join(FORMATS)}"))
    else:
        available = deps.toolchains.availability(request.format)
        if not available.available:
            problems.append(Problem("/format", "format_unavailable", available.reason or "not available"))
    resolved: ResolvedCheckpoint | None = None
    try:
        resolved = await deps.jobs.resolve(token, request.job_id, request.checkpoint)
    except CheckpointNotFound as exc:
        problems.append(Problem(exc.pointer, "checkpoint_not_found", str(exc)))
    if resolved is not None and (resolved.framework != "ultralytics" or resolved.task_type not in SUPPORTED_TASKS):
        problems.append(
            Problem(
                "/job_id",
                "task_not_supported",
                f"exports of {resolved.framework} {resolved.task_type} models are not offered yet "
                f"(supported: ultralytics {', '.join(SUPPORTED_TASKS)})",
            )
        )
    elif resolved is not None and spec is not None:
        reason = task_format_reason(resolved.task_type, request.format)
        if reason is not None:
            problems.append(Problem("/format", "task_not_supported", reason))
    options = dict(request.options)
    perturb = options.pop(DEBUG_OPTION, None)
    normal: dict[str, Any] = {}
    if spec is not None:
        normal, option_problems = normalise_options(
            request.format, options, resolved.default_imgsz if resolved else 640
        )
        problems += option_problems
    if perturb is not None:
        if not deps.debug_options or request.format != "onnx":
            problems.append(Problem(f"/options/{DEBUG_OPTION}", "option_not_supported", "a test-stack-only option"))
        elif not isinstance(perturb, int | float) or isinstance(perturb, bool):
            problems.append(Problem(f"/options/{DEBUG_OPTION}", "invalid_option", "a number"))
        else:
            normal[DEBUG_OPTION] = float(perturb)
    if problems or resolved is None:
        raise RequestRefused(problems)
    return await _create_or_find(deps, caller, request, resolved, normal)


async def _create_or_find(
    deps: Deps, caller: Principal, request: ExportRequest, resolved: ResolvedCheckpoint, options: dict[str, Any]
) -> tuple[Export, bool]:
    key = content_key(resolved.checkpoint["sha256"], request.format, options)
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        await uow.repo.lock_job(request.job_id)
        existing = await uow.repo.by_content(caller.project_id, key)
        if existing is not None:
            return existing, False
        export = Export(
            id=uuid.uuid4(),
            project_id=caller.project_id,
            job_id=request.job_id,
            version=await uow.repo.next_version(request.job_id),
            format=request.format,
            options=options,
            task_type=resolved.task_type,
            checkpoint=resolved.checkpoint,
            source=resolved.source,
            content_key=key,
            created_at=now,
        )
        await uow.repo.add(export)
        await uow.publish(EXPORT_REQUESTED, requested_event(export, now))
        await uow.commit()
    return export, True


def requested_event(export: Export, now: datetime) -> ExportRequested:
    """The command for the export's current attempt."""
    source = export.source
    return ExportRequested(
        export_id=export.id,
        project_id=export.project_id,
        job_id=export.job_id,
        checkpoint=ObjectRef(
            uri=export.checkpoint["uri"], sha256=export.checkpoint["sha256"], size_bytes=export.checkpoint["size_bytes"]
        ),
        format=export.format,
        options=export.options,
        requested_at=now,
        attempt=export.attempt,
        version=export.version,
        task_type=export.task_type,
        checkpoint_kind=export.checkpoint.get("kind"),
        snapshot_id=source.get("snapshot_id"),
        snapshot_content_hash=source.get("snapshot_content_hash"),
        split_fingerprint=source.get("split_fingerprint"),
        split=source.get("split"),
    )


async def get_export(deps: Deps, caller: Principal, export_id: uuid.UUID) -> Export:
    async with deps.new_uow() as uow:
        export = await uow.repo.get(caller.project_id, export_id)
    if export is None:
        raise ExportNotFound(str(export_id))
    return export


async def list_exports(
    deps: Deps,
    caller: Principal,
    job_id: uuid.UUID | None,
    fmt: str | None,
    status: str | None,
    default: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[Export], int]:
    async with deps.new_uow() as uow:
        return await uow.repo.search(caller.project_id, job_id, fmt, status, default, limit, offset)


async def delete_export(deps: Deps, caller: Principal, export_id: uuid.UUID) -> None:
    """Gone from the API at once; a running attempt's worker loses its lease and stops the child."""
    async with deps.new_uow() as uow:
        export = await uow.repo.get(caller.project_id, export_id, lock=True)
        if export is None:
            raise ExportNotFound(str(export_id))
        export.deleted_at, export.is_default = datetime.now(UTC), False
        await uow.repo.save(export)
        await uow.commit()
    if export.artifact:
        try:
            await deps.store.delete(deps.store.parse_uri(export.artifact["uri"]))
        except StorageError as exc:  # the row is gone either way; an orphan package is only space
            _log.warning("export %s: package not deleted: %s", export_id, exc)


async def make_default(deps: Deps, caller: Principal, export_id: uuid.UUID) -> Export:
    async with deps.new_uow() as uow:
        export = await uow.repo.get(caller.project_id, export_id, lock=True)
        if export is None:
            raise ExportNotFound(str(export_id))
        if export.status != Status.SUCCEEDED:
            raise ExportNotReady(f"export {export_id} is {export.status}; only a succeeded export can be the default")
        if not export.parity_passed:  # deployments pick the default: it must be one they can serve
            reason = (export.parity or {}).get("reason", "its parity check did not pass")
            raise ParityNotPassed(f"export {export_id} cannot be the default: its parity was not run ({reason})")
        await uow.repo.lock_job(export.job_id)
        await uow.repo.clear_default(export.job_id)
        export.is_default = True
        await uow.repo.save(export)
        await uow.commit()
    return export


async def package_key(deps: Deps, caller: Principal, export_id: uuid.UUID) -> tuple[Export, str]:
    """The object key of a succeeded export's package."""
    export = await get_export(deps, caller, export_id)
    if export.status != Status.SUCCEEDED or not export.artifact:
        raise ExportNotReady(f"export {export_id} is {export.status}; it has no package")
    return export, deps.store.parse_uri(export.artifact["uri"])
