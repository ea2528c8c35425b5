"""Canary weights: a deployment may split its requests between its current export and one other.

The split lives on the deployment as `canary` (the second export's version, stored model,
metadata and weight in percent); the current export answers the rest. Every answer names the
export that gave it. A switch or a rollback ends the split.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from vtp_inference.domain.model import Deployment, DeploymentConflict, Problem, Status

MAX_EXPORTS = 2


@dataclass(frozen=True)
class Share:
    export_id: uuid.UUID
    weight: int  # percent


def check_split(shares: list[Share], current: uuid.UUID) -> list[Problem]:
    """Every rule a requested split breaks (before any export is resolved)."""
    problems = []
    ids = [s.export_id for s in shares]
    if len(shares) > MAX_EXPORTS:
        problems.append(Problem("/traffic", "traffic_too_many_exports", f"at most {MAX_EXPORTS} exports share traffic"))
    if len(set(ids)) != len(ids):
        problems.append(Problem("/traffic", "traffic_duplicate_export", "an export appears twice"))
    if sum(s.weight for s in shares) != 100:
        total = sum(s.weight for s in shares)
        problems.append(Problem("/traffic", "traffic_weights_invalid", f"the weights sum to {total}, not 100"))
    elif len(shares) > 1 and any(s.weight == 0 for s in shares):
        problems.append(Problem("/traffic", "traffic_weights_invalid", "each export of a split takes 1 to 99"))
    if len(shares) > 1 and current not in ids:
        message = "a split keeps the current export; switch first (export_id) to split between two others"
        problems.append(Problem("/traffic", "traffic_current_export_missing", message))
    return problems


def set_canary(deployment: Deployment, export_id: uuid.UUID, version: int | None, model: dict[str, Any],
               meta: dict[str, Any], weight: int) -> None:  # fmt: skip
    """Let `export_id` answer `weight` percent of the requests (its model loaded and checked already)."""
    if deployment.status not in (Status.READY, Status.STOPPED):
        raise DeploymentConflict(f"a {deployment.status} deployment cannot split its traffic")
    deployment.canary = {
        "export_id": str(export_id), "export_version": version, "model": model, "model_meta": meta, "weight": weight
    }  # fmt: skip


def canary_view(deployment: Deployment) -> Deployment:
    """The deployment as its canary export serves it (what a request answered by the canary reports)."""
    c = deployment.canary or {}
    return replace(
        deployment,
        export_id=uuid.UUID(c["export_id"]),
        export_version=c["export_version"],
        model=c["model"],
        model_meta=c["model_meta"],
        canary=None,
    )


def shares(deployment: Deployment) -> list[dict[str, Any]]:
    """Who answers, with weights: the current export, then the canary (if any)."""
    weight = int((deployment.canary or {}).get("weight", 0))
    out = [{"export_id": deployment.export_id, "export_version": deployment.export_version, "weight": 100 - weight}]
    if deployment.canary:
        c = deployment.canary
        out.append({"export_id": uuid.UUID(c["export_id"]), "export_version": c["export_version"], "weight": weight})
    return out


def goes_to_canary(deployment: Deployment, draw: Callable[[], float] = random.random) -> bool:
    """One request's draw: the canary's weight in percent is its probability."""
    return bool(deployment.canary) and draw() * 100 < int((deployment.canary or {}).get("weight", 0))
