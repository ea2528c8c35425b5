"""Split a deployment's traffic between its current export and a canary export, or end the split.

The canary export is resolved with the same rules as a switch, then fetched, verified, loaded
and probed while the deployment keeps serving as before; only then the split is committed (one
transaction, one `updated` event carrying `traffic`). Replicas drop the deployment's entry and
load both models on their next request. Changing only the weights of the same canary reuses
its stored model; a canary replaced or ended is released once the change is committed, and one
prepared for a split that is then refused is released at once (`releasing.py`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.catalog import DEPLOYMENT_CHANGED
from vtp_inference.adapters.exports_client import PackageRejected
from vtp_inference.domain.model import Deployment, DeploymentConflict, DeploymentNotFound, Problem, RequestRefused
from vtp_inference.domain.traffic import Share, check_split, set_canary
from vtp_inference.service_layer.commands import DeploymentRequest, Deps, _resolve
from vtp_inference.service_layer.events import changed
from vtp_inference.service_layer.prepare import prepare
from vtp_inference.service_layer.releasing import Staged, release_dropped, release_staged
from vtp_inference.service_layer.switching import switch_export
from vtp_runtime.auth import Principal

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
    staged = Staged()
    try:
        deployment, dropped = await _commit(deps, caller, token, current, wanted, other, staged)
    except BaseException:  # refused, or a concurrent change: the canary prepared for it goes
        await release_staged(deps, current, staged)
        raise
    deps.cache.evict(deployment_id)
    await release_dropped(deps, deployment, dropped)
    return deployment


async def _commit(
    deps: Deps,
    caller: Principal,
    token: str,
    current: Deployment,
    wanted: list[Share],
    other: int | None,
    staged: Staged,
) -> tuple[Deployment, dict[str, Any] | None]:
    """Prepare the canary (if any) and commit the split; the canary model it stops referencing."""
    canary = None if other is None else await _canary(deps, token, current, wanted[other].export_id, other, staged)
    weight = 0 if other is None else wanted[other].weight
    now = datetime.now(UTC)
    async with deps.new_uow() as uow:
        deployment = await uow.repo.get(caller.project_id, current.id, lock=True)
        if deployment is None:
            raise DeploymentNotFound(str(current.id))
        dropped = (deployment.canary or {}).get("model")
        if canary is not None and not staged.files and dropped != canary[2]:  # reused, but ended meanwhile
            raise DeploymentConflict("the traffic split changed meanwhile: send it again")
        if canary is None:
            deployment.canary = None
        else:
            set_canary(deployment, *canary, weight)
        deployment.updated_at = now
        await uow.repo.save(deployment)
        await uow.publish(DEPLOYMENT_CHANGED, changed(deployment, "updated", now))
        await uow.commit()
    return deployment, dropped


async def _canary(
    deps: Deps, token: str, current: Deployment, export_id: uuid.UUID, index: int, staged: Staged
) -> Canary:
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
        prepared = await prepare(
            deps.exports, deps.store, deps.cache, token, export, current, deps.max_package_bytes, staged
        )
    except PackageRejected as exc:
        raise RequestRefused([Problem(at + "/export_id", "export_rejected", f"{exc.code}: {exc}")]) from exc
    if prepared.meta.get("task") != current.task_type:
        raise RequestRefused([Problem(at + "/export_id", "task_mismatch", "the export is of another task")])
    if prepared.meta.get("imgsz") != current.model_meta.get("imgsz"):  # one tensor shape for every OIP client
        message = f"the export takes {prepared.meta.get('imgsz')} px, the deployment {current.model_meta.get('imgsz')}"
        raise RequestRefused([Problem(at + "/export_id", "input_size_mismatch", message)])
    return export_id, export.get("version"), prepared.model, prepared.meta
