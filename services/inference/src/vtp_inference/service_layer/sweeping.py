"""The orphan sweep: model files and Triton models that no live deployment references any more.

Releases happen right after the change that makes them due (`releasing.py`); what they miss (a
replica that died between storing and committing, or between committing and releasing, or a
release that failed: object storage or Triton unreachable) is found here. Every replica sweeps at
start-up and then periodically: it reads what every live deployment references, then lists the
model files in object storage (`deployments/`) and the models in the Triton repository, and
releases what is unreferenced and older than the grace period, then removes the temporary folders
(`.tmp-*`) a crash left in the Triton repository, older than the grace too (`leftovers`). The grace
covers a preparation in flight on another replica (its files are stored, its Triton model and its
temporary folder written, before its deployment row names them). References are read before
listing, so a file committed meanwhile is referenced already or is younger than the grace: a
committed change never newly references an old file (a rollback swaps two that both stay
referenced; a split that keeps its canary keeps referencing it), nor an old Triton model (each
preparation loads its own, under a new name). `prefix`, `held` and `leftovers` bound what is
looked at: the replica's sweep passes the whole model space, a test only what it planted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vtp_inference.domain.model_refs import InUse
from vtp_inference.service_layer.releasing import ReleaseDeps, delete_file, unload
from vtp_runtime.storage import StorageError

_log = logging.getLogger(__name__)
PREFIX = "deployments/"  # every model file this service stores (prepare.py), and nothing else


@dataclass(frozen=True)
class Held:
    """A model an external runtime holds: under a deployment's key, named by its sha256 (or a prefix)."""

    runtime: str
    key: str
    sha256: str
    written: datetime


@dataclass
class Swept:
    files: int = 0
    models: int = 0
    leftovers: int = 0


async def sweep_orphans(
    deps: ReleaseDeps,
    grace_seconds: float,
    held: Callable[[], list[Held]] | None = None,
    now: datetime | None = None,
    prefix: str = PREFIX,
    leftovers: Callable[[datetime], int] | None = None,
) -> Swept:
    """Release every unreferenced model file (under `prefix`) and external model older than `grace_seconds`;
    `leftovers(cutoff)` removes what interrupted writes left, untouched since `cutoff`, and counts it."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=grace_seconds)
    async with deps.new_uow() as uow:
        in_use = InUse.of(await uow.repo.live())
    used_keys: set[str] = set()
    for uri in in_use.uris:
        try:
            used_keys.add(deps.store.parse_uri(uri))
        except StorageError:  # another bucket or scheme: names nothing listed here
            continue
    swept = Swept()
    for key, modified in await deps.store.list_modified(prefix):
        if modified < cutoff and key not in used_keys and await delete_file(deps.store, deps.store.uri(key)):
            swept.files += 1
    for model in await asyncio.to_thread(held) if held is not None else []:
        free = in_use.model_free(model.key, model.sha256)
        if model.written < cutoff and free and await unload(deps.cache, model.runtime, model.key, model.sha256):
            swept.models += 1
    if leftovers is not None:
        swept.leftovers = await asyncio.to_thread(leftovers, cutoff)
    if swept.files or swept.models or swept.leftovers:
        message = "orphan sweep: %d model files deleted, %d models released, %d temporary folders removed"
        _log.info(message, swept.files, swept.models, swept.leftovers)
    return swept
