"""What the live deployments still reference: their stored model files and their externally loaded models.

A deployment references up to three models (current, `previous` for a rollback, a split's canary),
each one or two stored files (the model, its `weights`). A file may be deleted only when no live
deployment references its uri in any slot; a model an external runtime (Triton) holds under a key
may be released only when no live deployment serves a model of that key and sha256. The key is the
preparation's own (`runtime_key`: deployment id and a random part), so two preparations of the same
content for one deployment never share a Triton model that one of them might release.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vtp_inference.domain.model import Deployment

SHA_PREFIX = 12  # an external runtime names a model by its key and this much of its sha256


def models_of(deployment: Deployment) -> list[dict[str, Any]]:
    """The deployment's models: current, previous (rollback), canary (traffic split)."""
    found = [deployment.model, (deployment.previous or {}).get("model"), (deployment.canary or {}).get("model")]
    return [m for m in found if m]


def runtime_key(deployment_id: object, model: dict[str, Any]) -> str:
    """The key an external runtime holds `model` under: its preparation's own, else (a model prepared
    before preparations had one) the deployment's id."""
    return str(model.get("runtime_key") or deployment_id)


def files_of(model: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The stored files of one model: the model, then its `weights` (OpenVINO's bin, Triton's config)."""
    if not model:
        return []
    return [ref for ref in (model, model.get("weights")) if ref and ref.get("uri")]


@dataclass(frozen=True)
class InUse:
    uris: frozenset[str]
    loaded: frozenset[tuple[str, str]]  # (runtime key, sha256 prefix)

    @classmethod
    def of(cls, deployments: Iterable[Deployment]) -> InUse:
        uris: set[str] = set()
        loaded: set[tuple[str, str]] = set()
        for deployment in deployments:
            if deployment.deleted_at is not None:  # a deleted deployment references nothing
                continue
            for model in models_of(deployment):
                uris.update(str(ref["uri"]) for ref in files_of(model))
                if model.get("sha256"):
                    loaded.add((runtime_key(deployment.id, model), str(model["sha256"])[:SHA_PREFIX]))
        return cls(frozenset(uris), frozenset(loaded))

    def file_free(self, uri: str) -> bool:
        return uri not in self.uris

    def model_free(self, key: str, sha256: str) -> bool:
        """Whether the model `key` holds with this sha256 (or sha256 prefix) is served by nothing."""
        return (key, sha256[:SHA_PREFIX]) not in self.loaded
