"""Background tasks of the datasets service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.service_layer.blob_gc import NewUow, sweep_orphans
from vtp_runtime.http.app import BackgroundTask

_log = logging.getLogger(__name__)


def orphan_sweeper(new_uow: NewUow, blobs: BlobStore, every_seconds: float, grace: timedelta) -> BackgroundTask:
    """Sweep orphan blobs every `every_seconds` (the first sweep one interval after start-up)."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_seconds)
            if stop.is_set():
                return
            try:
                if await sweep_orphans(new_uow, blobs, grace) is None:
                    _log.info("orphan sweep skipped: another replica is sweeping")
            except Exception:  # the next round retries
                _log.exception("orphan blob sweep failed")

    return run
