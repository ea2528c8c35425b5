"""Models held by an external runtime (Triton) are released when nothing can serve them any more.

Stopping or deleting a deployment releases its current and previous models; a switch releases the
model two switches back (the previous one stays loaded, so a rollback is immediate). A release
that fails (Triton unreachable) is logged: the deployment's own change stands either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.runtimes import ModelInvalid
from vtp_inference.domain.model import Deployment

_log = logging.getLogger(__name__)


async def release_models(cache: ModelCache, deployment: Deployment, *models: dict[str, Any] | None) -> None:
    for model in models:
        if not model or not model.get("sha256"):
            continue
        try:
            await asyncio.to_thread(cache.release, deployment.runtime, str(deployment.id), str(model["sha256"]))
        except ModelInvalid as exc:
            _log.warning("deployment %s: model not released from its runtime: %s", deployment.id, exc)
