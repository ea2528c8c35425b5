"""Release what nothing references any more: stored model files, and models an external runtime holds.

Two moments: after a commit that stops referencing a model (a switch drops the one two switches
back, a switch or a rollback ends a split, a split changes or ends, a deployment is deleted), and
when a prepared model is not committed at all (refused, a concurrent change, the request failed):
`Staged` records what preparing put in place. Either way the database decides, read fresh: a file
is deleted only when no live deployment names its uri, and a model is unloaded from Triton only when
no live deployment serves it (its runtime key and sha256; the key is one preparation's own, so no
other preparation loads the same Triton model meanwhile). Releasing never fails the request that
caused it: a failure is logged, and the orphan sweep (`sweeping.py`) retries. Stopping a deployment
only unloads its models from Triton (`release_models`): its files stay, it may be activated again;
that unload holds the deployment's row lock and checks it is still stopped, so an activation
committed meanwhile never finds its models unloaded under a replica that loaded them again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.runtimes import ModelInvalid
from vtp_inference.domain.model import Deployment, Status
from vtp_inference.domain.model_refs import InUse, files_of, runtime_key
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.storage import ObjectStore, StorageError

_log = logging.getLogger(__name__)


class ReleaseDeps(Protocol):
    """What releasing needs of the commands' `Deps`."""

    @property
    def new_uow(self) -> NewUow: ...

    @property
    def store(self) -> ObjectStore: ...

    @property
    def cache(self) -> ModelCache: ...


@dataclass
class Staged:
    """What preparing a model put in place before any commit: stored files, a model loaded in Triton."""

    files: list[dict[str, Any]] = field(default_factory=list)  # uri (and sha256, size once stored)
    models: list[tuple[str, str]] = field(default_factory=list)  # (runtime key, sha256) an external runtime may hold

    def add_model(self, deployment: Deployment, model: dict[str, Any]) -> None:
        self.files += files_of(model)
        if model.get("sha256"):
            self.models.append((runtime_key(deployment.id, model), str(model["sha256"])))


async def release_models(deps: ReleaseDeps, deployment: Deployment, *models: dict[str, Any] | None) -> None:
    """Unload a stopped deployment's models from its external runtime (its files stay), unless it runs again."""
    wanted = [(runtime_key(deployment.id, m), str(m["sha256"])) for m in models if m and m.get("sha256")]
    if not wanted or not deps.cache.external(deployment.runtime):  # in-process runtimes: the cache evicted it
        return
    try:
        async with deps.new_uow() as uow:  # the row lock: an activation commits after the unload, or before it
            current = await uow.repo.get(deployment.project_id, deployment.id, lock=True)
            if current is None or current.status != Status.STOPPED:  # deleted (released then), or active again
                return
            for key, sha256 in wanted:
                await unload(deps.cache, deployment.runtime, key, sha256)
    except Exception:  # the database is unreachable: the models stay loaded (memory only)
        _log.warning("deployment %s: models not unloaded (state unknown)", deployment.id, exc_info=True)


async def release_dropped(deps: ReleaseDeps, deployment: Deployment, *models: dict[str, Any] | None) -> None:
    """After a commit: release `models` (files and runtime copies) that nothing references any more."""
    staged = Staged()
    for model in models:
        if model:
            staged.add_model(deployment, model)
    await release_staged(deps, deployment, staged)


async def release_staged(deps: ReleaseDeps, deployment: Deployment, staged: Staged) -> None:
    """Release what `staged` holds, except what a live deployment references (read now, not before)."""
    if not staged.files and not staged.models:
        return
    uris = [str(ref["uri"]) for ref in staged.files]
    try:
        async with deps.new_uow() as uow:
            in_use = InUse.of(await uow.repo.referencing(deployment.id, uris))
    except Exception:  # the database is unreachable: keep everything; the sweep retries
        _log.warning("deployment %s: models not released (references unknown)", deployment.id, exc_info=True)
        return
    for key, sha256 in dict.fromkeys(staged.models):
        if in_use.model_free(key, sha256):
            await unload(deps.cache, deployment.runtime, key, sha256)
    for uri in dict.fromkeys(uris):
        if in_use.file_free(uri):
            await delete_file(deps.store, uri, deployment.id)


async def delete_file(store: ObjectStore, uri: str, deployment_id: uuid.UUID | None = None) -> bool:
    try:
        await store.delete(store.parse_uri(uri))
        return True
    except StorageError as exc:  # only space; the sweep retries
        _log.warning("deployment %s: model file %s not deleted: %s", deployment_id, uri, exc)
        return False


async def unload(cache: ModelCache, runtime: str, key: str, sha256: str) -> bool:
    try:
        await asyncio.to_thread(cache.release, runtime, key, sha256)
        return True
    except ModelInvalid as exc:  # Triton unreachable: the sweep retries
        _log.warning("deployment %s: model not released from its runtime: %s", key, exc)
        return False
