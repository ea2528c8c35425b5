"""Commands from the API: create (resolve, fetch, check, store), read, list, patch, delete, (de)activate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vtp_contracts.catalog import DEPLOYMENT_CHANGED
from vtp_inference.adapters.exports_client import ExportNotFound, ExportsClient, PackageRejected
from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.domain.model import (
    SERVED_RUNTIMES,
    SERVED_TASKS,
    Deployment,
    DeploymentNotFound,
    Problem,
    RequestRefused,
    Status,
)
from vtp_inference.domain.model_refs import models_of
from vtp_inference.service_layer.events import changed
from vtp_inference.service_layer.prepare import prepare
from vtp_inference.service_layer.releasing import Staged, release_dropped, release_models, release_staged
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.auth import Principal
from vtp_runtime.storage import ObjectStore


@dataclass
class Deps:
    new_uow: NewUow
    exports: ExportsClient
    store: ObjectStore
    cache: ModelCache
    max_package_bytes: int


@dataclass(frozen=True)
class DeploymentRequest:
    export_id: uuid.UUID
    name: str
    runtime: str
    conf: float
    iou: float
    max_det: int


async def _resolve(deps: Deps, token: str, request: DeploymentRequest) -> dict[str, Any]:
    """The export, if it can be served here; every reason it cannot, all at once."""
    problems: list[Problem] = []
    if request.runtime not in SERVED_RUNTIMES or not deps.cache.available(request.runtime):
        reason = f"the {request.runtime} runtime is not offered"
        if request.runtime == "triton":
            reason = "the triton runtime needs a Triton server, and none is configured here (VTP_TRITON_URL)"
        problems.append(Problem("/runtime", "runtime_unavailable", reason))
    export: dict[str, Any] = {}
    try:
        export = await deps.exports.get(token, request.export_id)
    except ExportNotFound:
        problems.append(Problem("/export_id", "export_not_found", "no such export in this project"))
    if export:
        parity = export.get("parity") or {}
        if export.get("status") != "succeeded":
            problems.append(Problem("/export_id", "export_not_ready", f"the export is {export.get('status')}"))
        elif not parity.get("passed"):
            problems.append(Problem("/export_id", "export_parity_failed", "the export did not pass its parity check"))
        if export.get("task_type") not in SERVED_TASKS:
            problems.append(Problem("/export_id", "task_not_supported", f"{export.get('task_type')} is not served yet"))
        wanted = SERVED_RUNTIMES.get(request.runtime)
        if wanted and export.get("format") != wanted:
            message = f"the {request.runtime} runtime serves {wanted} exports, not {export.get('format')}"
            problems.append(Problem("/export_id", "export_format_unsupported", message))
    if problems:
        raise RequestRefused(problems)
    return export


async def create_deployment(deps: Deps, caller: Principal, token: str, request: DeploymentRequest) -> Deployment:
    """`creating` (committed with its event), then `ready` or `failed` with a code, also committed."""
    export = await _resolve(deps, token, request)
    now = datetime.now(UTC)
    deployment = Deployment(
        id=uuid.uuid4(),
        project_id=caller.project_id,
        name=request.name,
        export_id=request.export_id,
        export_version=export.get("version"),
        task_type=str(export["task_type"]),
        runtime=request.runtime,
        conf=request.conf,
        iou=request.iou,
        max_det=request.max_det,
        created_at=now,
        updated_at=now,
    )
    async with deps.new_uow() as uow:
        await uow.repo.add(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "creating", now))
        await uow.commit()
    staged, kept = Staged(), False
    try:
        try:
            prepared = await prepare(
                deps.exports, deps.store, deps.cache, token, export, deployment, deps.max_package_bytes, staged
            )
        except PackageRejected as exc:
            return await _finish(deps, deployment, None, (exc.code, str(exc)))
        done = await _finish(deps, deployment, prepared.model, None, prepared.meta)
        kept = done.model == prepared.model
        return done
    finally:  # refused, or deleted / failed by the watchdog meanwhile: what was prepared goes
        if not kept:
            await release_staged(deps, deployment, staged)


async def _finish(
    deps: Deps,
    deployment: Deployment,
    model: dict[str, Any] | None,
    failure: tuple[str, str] | None,
    meta: dict[str, Any] | None = None,
) -> Deployment:
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        current = await uow.repo.get(deployment.project_id, deployment.id, lock=True)
        if current is None or current.status != Status.CREATING:  # deleted, or failed by the watchdog meanwhile
            return current or deployment
        if failure is not None:
            current.fail(*failure, now)
        else:
            current.model, current.model_meta, current.status, current.updated_at = model, meta or {}, Status.READY, now
        await uow.repo.save(current)
        await uow.publish(DEPLOYMENT_CHANGED, changed(current, str(current.status), now))
        await uow.commit()
    return current


async def get_deployment(deps: Deps, caller: Principal, deployment_id: uuid.UUID) -> Deployment:
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, deployment_id)
    if deployment is None:
        raise DeploymentNotFound(str(deployment_id))
    return deployment


async def list_deployments(
    deps: Deps, caller: Principal, status: str | None, limit: int, offset: int
) -> tuple[list[Deployment], int]:
    async with deps.new_uow() as uow:
        return await uow.repo.search(caller.project_id, status, limit, offset)


async def update_deployment(
    deps: Deps, caller: Principal, deployment_id: uuid.UUID, changes: dict[str, Any], action: str = "patch"
) -> Deployment:
    """Patch name / default thresholds, or activate / deactivate; one event, and this replica forgets it."""
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, deployment_id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(deployment_id))
        if action in ("activate", "deactivate"):
            moved = deployment.activate(now) if action == "activate" else deployment.deactivate(now)
            if not moved:
                return deployment  # already so: nothing to write or announce
            status = str(deployment.status)
        else:
            for key, value in changes.items():
                setattr(deployment, key, value)
            deployment.updated_at, status = now, "updated"
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, status, now))
        await uow.commit()
    deps.cache.evict(deployment_id)
    if action == "deactivate":  # a stopped deployment serves nothing: Triton may drop its models
        await release_models(deps, deployment, *models_of(deployment))
    return deployment


async def delete_deployment(deps: Deps, caller: Principal, deployment_id: uuid.UUID) -> None:
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, deployment_id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(deployment_id))
        deployment.deleted_at = deployment.updated_at = now
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "deleted", now))
        await uow.commit()
    deps.cache.evict(deployment_id)
    await release_dropped(deps, deployment, *models_of(deployment))  # files and Triton copies of every slot


async def fail_on_load(deps: Deps, project_id: uuid.UUID, deployment_id: uuid.UUID, code: str, message: str) -> None:
    """A ready deployment whose stored model cannot be loaded any more (sha256, runtime refusal) fails."""
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(project_id, deployment_id, lock=True)
        if deployment is None or deployment.status != Status.READY:
            return
        deployment.fail(code, message, now)
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "failed", now))
        await uow.commit()
    deps.cache.evict(deployment_id)


async def fail_stale_creating(new_uow: NewUow, timeout_seconds: float) -> int:
    """Deployments left `creating` by a replica that died mid-creation become `failed`."""
    now = datetime.now(UTC)
    async with new_uow() as uow:
        stale = await uow.repo.stale_creating(now - timedelta(seconds=timeout_seconds))
        for deployment in stale:
            deployment.fail("CREATION_INTERRUPTED", "the replica creating it stopped before it was ready", now)
            await uow.repo.save(deployment)
            await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "failed", now))
        await uow.commit()
    return len(stale)
