"""Switch a deployment to another export of its project, and roll back in one call.

The new export's package is fetched, verified, loaded and probed before anything changes; only
then does the deployment point at it (one transaction, one `updated` event). Replicas drop the
old model and load the new one on their next request, which waits for the load instead of
failing. A refused export leaves the deployment serving what it served.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.catalog import DEPLOYMENT_CHANGED
from vtp_inference.adapters.exports_client import PackageRejected
from vtp_inference.domain.model import Deployment, DeploymentNotFound, Problem, RequestRefused
from vtp_inference.service_layer.commands import DeploymentRequest, Deps, _resolve, update_deployment
from vtp_inference.service_layer.events import changed
from vtp_inference.service_layer.prepare import prepare
from vtp_inference.service_layer.releasing import release_models
from vtp_runtime.auth import Principal
from vtp_runtime.storage import StorageError

_log = logging.getLogger(__name__)


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
    try:
        prepared = await prepare(deps.exports, deps.store, deps.cache, token, export, current, deps.max_package_bytes)
    except PackageRejected as exc:
        raise RequestRefused([Problem("/export_id", "export_rejected", f"{exc.code}: {exc}")]) from exc
    if prepared.meta.get("task") != current.task_type:
        raise RequestRefused([Problem("/export_id", "task_mismatch", "the export is of another task")])
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, deployment_id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(deployment_id))
        dropped = deployment.previous
        deployment.switch(export_id, export.get("version"), prepared.model, prepared.meta)
        for key, value in (changes or {}).items():
            setattr(deployment, key, value)
        deployment.updated_at = now
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "updated", now))
        await uow.commit()
    deps.cache.evict(deployment_id)
    await _forget(deps, dropped, deployment)
    return deployment


async def rollback(deps: Deps, caller: Principal, deployment_id: uuid.UUID) -> Deployment:
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, deployment_id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(deployment_id))
        deployment.rollback()
        deployment.updated_at = now
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "updated", now))
        await uow.commit()
    deps.cache.evict(deployment_id)
    return deployment


async def _forget(deps: Deps, dropped: dict[str, Any] | None, deployment: Deployment) -> None:
    """Delete the model file no longer reachable by a rollback (unless still in use)."""
    model = (dropped or {}).get("model")
    in_use = {(deployment.model or {}).get("uri"), ((deployment.previous or {}).get("model") or {}).get("uri")}
    if not model or model.get("uri") in in_use:
        return
    served = [deployment.model or {}, (deployment.previous or {}).get("model") or {}]
    if model.get("sha256") not in {m.get("sha256") for m in served}:  # Triton names models by sha256
        await release_models(deps.cache, deployment, model)
    for ref in (model, model.get("weights")):
        try:
            if ref:
                await deps.store.delete(deps.store.parse_uri(ref["uri"]))
        except StorageError as exc:  # only space
            _log.warning("deployment %s: old model file not deleted: %s", deployment.id, exc)
