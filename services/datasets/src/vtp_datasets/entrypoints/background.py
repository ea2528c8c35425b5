"""Background tasks of the datasets service."""

from __future__ import annotations

import logging
from datetime import timedelta

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.service_layer.blob_gc import NewUow, sweep_orphans
from vtp_runtime.periodic import periodic
from vtp_runtime.supervision import Background

_log = logging.getLogger(__name__)


def orphan_sweeper(new_uow: NewUow, blobs: BlobStore, every_seconds: float, grace: timedelta) -> Background:
    """Sweep orphan blobs every `every_seconds` (the first sweep one interval after start-up)."""

    async def sweep() -> None:
        if await sweep_orphans(new_uow, blobs, grace) is None:
            _log.info("orphan sweep skipped: another replica is sweeping")

    return periodic("orphan blob sweep", every_seconds, sweep, first_after=every_seconds)
