"""Composition of the orphan sweep (service_layer/sweeping.py): at start-up, then periodically, on every replica;
with Triton, over the whole shared repository (its models and the temporary folders crashes left)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vtp_inference.adapters.triton_repository import TritonRepository
from vtp_inference.service_layer.releasing import ReleaseDeps
from vtp_inference.service_layer.sweeping import Held, sweep_orphans
from vtp_inference.settings import InferenceSettings
from vtp_runtime.periodic import periodic
from vtp_runtime.service import ServiceRuntime

FIRST_AFTER = 30.0  # seconds after start-up: the replica is serving first


def use_orphan_sweep(runtime: ServiceRuntime, deps: ReleaseDeps, settings: InferenceSettings) -> None:
    held, leftovers = None, None
    if settings.triton_url and settings.triton_model_repository:
        repository = TritonRepository(Path(settings.triton_model_repository))
        held, leftovers = _triton_models(repository), repository.remove_leftovers

    async def sweep() -> None:
        await sweep_orphans(deps, settings.orphan_grace_seconds, held, leftovers=leftovers)

    runtime.parts.background.append(
        periodic("orphan sweep", settings.orphan_sweep_seconds, sweep, first_after=FIRST_AFTER)
    )


def _triton_models(repository: TritonRepository) -> Callable[[], list[Held]]:
    """The models in the Triton repository this replica shares (named by deployment and sha256 prefix)."""

    def held() -> list[Held]:
        return [Held("triton", key, sha, written) for key, sha, written in repository.held()]

    return held
