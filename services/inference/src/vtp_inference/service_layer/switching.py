"""Switch a deployment to another export of its project, and roll back in one call.

The new export's package is fetched, verified, loaded and probed before anything changes; only
then does the deployment point at it (one transaction, one `updated` event). Replicas drop the
old model and load the new one on their next request, which waits for the load instead of
failing. A refused export leaves the deployment serving what it served, and nothing of it behind
(its stored files and its Triton copy are released, `releasing.py`); a committed switch releases
the model two switches back and the canary of a split it ends, as a rollback releases the canary.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.catalog import DEPLOYMENT_CHANGED
from vtp_inference.adapters.exports_client import PackageRejected
from vtp_inference.domain.model import Deployment, DeploymentNotFound, Problem, RequestRefused
from vtp_inference.service_layer.commands import DeploymentRequest, Deps, _resolve, update_deployment
from vtp_inference.service_layer.events import changed
from vtp_inference.service_layer.prepare import prepare
from vtp_inference.service_layer.releasing import Staged, release_dropped, release_staged
from vtp_runtime.auth import Principal


async def switch_export(
    deps: Deps,
    caller: Principal,
    token: str,
    deployment_id: uuid.UUID,
    export_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
) -> Deployment:
    """Serve `export_id`; `changes` (name, thresholds) commit in the same transaction or not at all."""
    async with deps.new_uow() as uow:
        current = await uow.repo.get(caller.project_id, deployment_id)
    if current is None:
        raise DeploymentNotFound(str(deployment_id))
    if export_id == current.export_id:  # nothing to switch: a plain update
        return await update_deployment(deps, caller, deployment_id, changes or {})
    wanted = DeploymentRequest(export_id, current.name, current.runtime, current.conf, current.iou, current.max_det)
    export = await _resolve(deps, token, wanted)
    staged = Staged()
    try:
        deployment, dropped = await _commit(deps, caller, token, current, (export_id, export), changes, staged)
    except BaseException:  # refused, a concurrent change, a name taken: what was prepared goes
        await release_staged(deps, current, staged)
        raise
    deps.cache.evict(deployment_id)
    await release_dropped(deps, deployment, *dropped)
    return deployment


async def _commit(
    deps: Deps,
    caller: Principal,
    token: str,
    current: Deployment,
    target: tuple[uuid.UUID, dict[str, Any]],
    changes: dict[str, Any] | None,
    staged: Staged,
) -> tuple[Deployment, list[dict[str, Any] | None]]:
    """Prepare the export and commit the switch; the models it stops referencing (previous, canary)."""
    export_id, export = target
    try:
        prepared = await prepare(
            deps.exports, deps.store, deps.cache, token, export, current, deps.max_package_bytes, staged
        )
    except PackageRejected as exc:
        raise RequestRefused([Problem("/export_id", "export_rejected", f"{exc.code}: {exc}")]) from exc
    if prepared.meta.get("task") != current.task_type:
        raise RequestRefused([Problem("/export_id", "task_mismatch", "the export is of another task")])
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, current.id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(current.id))
        dropped = [(deployment.previous or {}).get("model"), (deployment.canary or {}).get("model")]
        deployment.switch(export_id, export.get("version"), prepared.model, prepared.meta)
        for key, value in (changes or {}).items():
            setattr(deployment, key, value)
        deployment.updated_at = now
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "updated", now))
        await uow.commit()
    return deployment, dropped


async def rollback(deps: Deps, caller: Principal, deployment_id: uuid.UUID) -> Deployment:
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, deployment_id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(deployment_id))
        dropped = (deployment.canary or {}).get("model")  # a rollback ends a split
        deployment.rollback()
        deployment.updated_at = now
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "updated", now))
        await uow.commit()
    deps.cache.evict(deployment_id)
    await release_dropped(deps, deployment, dropped)
    return deployment
