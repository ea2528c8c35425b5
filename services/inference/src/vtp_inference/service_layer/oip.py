"""What both transports of the Open Inference Protocol (REST and gRPC) share.

Model name = the deployment's name (or id) in the caller's project; version = its export's
version. Refusals carry an HTTP status and a stable code; gRPC maps them to its status codes.
"""

from __future__ import annotations

import math

import numpy as np

from vtp_inference.adapters.model_cache import Loaded, ModelIntegrity, ModelInvalid
from vtp_inference.domain.model import Deployment, DeploymentNotFound, NotServing
from vtp_inference.service_layer.predicting import Predictor, served_versions
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.auth import Principal
from vtp_runtime.storage import StorageError


class OipError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def invalid(message: str) -> OipError:
    return OipError(400, "invalid_inference_request", message)


async def resolve_model(
    predictor: Predictor, caller: Principal, name: str, version: str | None, *, ready: bool = True, split: bool = True
) -> Loaded:
    """The caller's ready model `name` (at `version` when given), loaded; `ready=False`: 404 when not serving.

    During a traffic split, the export that answers (`split=False`: the current one, its canary in `.canary`).
    """
    try:
        entry = await predictor.loaded_by_name(caller, name, version, split=split)
    except DeploymentNotFound as exc:
        raise OipError(404, "model_not_found", f"unknown model {name!r}") from exc
    except NotServing as exc:
        raise OipError(400 if ready else 404, "model_not_ready", f"model {name!r}: {exc}") from exc
    except (ModelIntegrity, ModelInvalid, StorageError) as exc:
        raise OipError(503, "model_unavailable", f"model {name!r} cannot be loaded: {exc}") from exc
    if version is not None and version not in served_versions(entry):
        raise OipError(404, "model_version_not_found", f"model {name!r} has no version {version!r}")
    return entry


def check_finite(tensor: np.ndarray) -> None:
    if not math.isfinite(float(tensor.sum())):
        raise invalid("the input holds NaN or infinity")


async def repository_index(new_uow: NewUow, caller: Principal, limit: int = 1000) -> list[Deployment]:
    """The caller's deployments (at most `limit`, newest first), as a model repository lists its models."""
    async with new_uow() as uow:
        found, _ = await uow.repo.search(caller.project_id, None, limit, 0)
    return found


def answered_by(entry: Loaded) -> dict[str, str]:
    """The response parameters that name the export which answered (it differs during a traffic split)."""
    return {"export_id": str(entry.deployment.export_id)}
