"""Split a deployment's traffic between its current export and a canary export, or end the split.

The canary export is resolved with the same rules as a switch, then fetched, verified, loaded
and probed while the deployment keeps serving as before; only then the split is committed (one
transaction, one `updated` event carrying `traffic`). Replicas drop the deployment's entry and
load both models on their next request. Changing only the weights of the same canary reuses
its stored model.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.catalog import DEPLOYMENT_CHANGED
from vtp_inference.adapters.exports_client import PackageRejected
from vtp_inference.domain.model import Deployment, DeploymentNotFound, Problem, RequestRefused
from vtp_inference.domain.traffic import Share, check_split, set_canary
from vtp_inference.service_layer.commands import DeploymentRequest, Deps, _resolve
from vtp_inference.service_layer.events import changed
from vtp_inference.service_layer.prepare import prepare
from vtp_inference.service_layer.releasing import release_models
from vtp_inference.service_layer.switching import switch_export
from vtp_runtime.auth import Principal
from vtp_runtime.storage import StorageError

_log = logging.getLogger(__name__)
Canary = tuple[uuid.UUID, int | None, dict[str, Any], dict[str, Any]]  # export, version, model, meta


async def set_traffic(
    deps: Deps, caller: Principal, token: str, deployment_id: uuid.UUID, wanted: list[Share]
) -> Deployment:
    async with deps.new_uow() as uow:
        current = await uow.repo.get(caller.project_id, deployment_id)
    if current is None:
        raise DeploymentNotFound(str(deployment_id))
    problems = check_split(wanted, current.export_id)
    if problems:
        raise RequestRefused(problems)
    other = next((i for i, s in enumerate(wanted) if s.export_id != current.export_id), None)
    if other is not None and len(wanted) == 1:  # all traffic to another export: a switch
        return await switch_export(deps, caller, token, deployment_id, wanted[0].export_id)
    canary = None if other is None else await _canary(deps, token, current, wanted[other].export_id, other)
    weight = 0 if other is None else wanted[other].weight
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, deployment_id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(deployment_id))
        dropped = deployment.canary
        if canary is None:
            deployment.canary = None
        else:
            set_canary(deployment, *canary, weight)
        deployment.updated_at = now
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "updated", now))
        await uow.commit()
    deps.cache.evict(deployment_id)
    await _forget(deps, dropped, deployment)
    return deployment


async def _canary(deps: Deps, token: str, current: Deployment, export_id: uuid.UUID, index: int) -> Canary:
    """The canary export: resolved, fetched, verified, loaded and probed (reused when only its weight changes)."""
    if current.canary and current.canary["export_id"] == str(export_id):
        c = current.canary
        return export_id, c["export_version"], c["model"], c["model_meta"]
    at = f"/traffic/{index}"
    wanted = DeploymentRequest(export_id, current.name, current.runtime, current.conf, current.iou, current.max_det)
    try:
        export = await _resolve(deps, token, wanted)
    except RequestRefused as exc:
        raise RequestRefused([Problem(at + p.pointer, p.code, p.message) for p in exc.problems]) from exc
    try:
        prepared = await prepare(deps.exports, deps.store, deps.cache, token, export, current, deps.max_package_bytes)
    except PackageRejected as exc:
        raise RequestRefused([Problem(at + "/export_id", "export_rejected", f"{exc.code}: {exc}")]) from exc
    if prepared.meta.get("task") != current.task_type:
        raise RequestRefused([Problem(at + "/export_id", "task_mismatch", "the export is of another task")])
    if prepared.meta.get("imgsz") != current.model_meta.get("imgsz"):  # one tensor shape for every OIP client
        message = f"the export takes {prepared.meta.get('imgsz')} px, the deployment {current.model_meta.get('imgsz')}"
        raise RequestRefused([Problem(at + "/export_id", "input_size_mismatch", message)])
    return export_id, export.get("version"), prepared.model, prepared.meta


async def _forget(deps: Deps, dropped: dict[str, Any] | None, deployment: Deployment) -> None:
    """Delete the stored model of a canary that no longer serves (unless the deployment still uses its file)."""
    model = (dropped or {}).get("model")
    used = [deployment.model, (deployment.previous or {}).get("model"), (deployment.canary or {}).get("model")]
    if not model or model.get("uri") in {(m or {}).get("uri") for m in used}:
        return
    if model.get("sha256") not in {(m or {}).get("sha256") for m in used}:  # Triton names models by sha256
        await release_models(deps.cache, deployment, model)
    for ref in (model, model.get("weights")):
        try:
            if ref:
                await deps.store.delete(deps.store.parse_uri(ref["uri"]))
        except StorageError as exc:  # only space
            _log.warning("deployment %s: old canary model not deleted: %s", deployment.id, exc)
