"""An upload from spooled zip to stored content, ready for the caller to commit its version row.

Validation and storing overlap: each image is staged (written invisibly, where the object store
can) on the probe thread that has just read and checked it, so the per-file write cost hides
behind decoding. A rejected upload discards what was staged: nothing becomes visible. An accepted
one leases its keys against the orphan sweep, then publishes them (renames) and writes the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.service_layer.blob_gc import blob_lease
from vtp_datasets.service_layer.content import Content, plan_content, store_content, written_keys
from vtp_datasets.service_layer.ingest import BaseVersion, inspect_upload
from vtp_datasets.service_layer.unit_of_work import DatasetsUnitOfWork
from vtp_dice.archive import ArchiveLimits
from vtp_dice.splits import SplitConfig
from vtp_dice.statistics import compute_statistics

_log = logging.getLogger(__name__)


@asynccontextmanager
async def ingested(
    new_uow: Callable[[], DatasetsUnitOfWork],
    blobs: BlobStore,
    limits: ArchiveLimits,
    workers: int,
    upload: Path,
    base: BaseVersion,
    split: SplitConfig,
    fmt: str = "auto",
) -> AsyncIterator[tuple[Content, dict[str, Any]]]:
    """Validate and store `upload` (DICE, or YOLO/COCO converted: `fmt`) onto `base`; yields (content, stats).

    Commit the rows that reference the content inside the block: its blobs stay leased until then.
    """
    async with AsyncExitStack() as stack:
        started = time.perf_counter()
        staged = blobs.staging()
        stack.push_async_callback(staged.discard)  # a no-op once published
        inspected = await asyncio.to_thread(inspect_upload, upload, limits, base, workers, staged.offer, fmt)
        stack.callback(inspected.close)
        validated = time.perf_counter()
        content, json_blobs = plan_content(inspected)
        await stack.enter_async_context(blob_lease(new_uow, written_keys(inspected, content, json_blobs)))
        await store_content(blobs, inspected, content, json_blobs, staged, workers)
        inspected.close()
        stored = time.perf_counter()
        stats = compute_statistics(content.docs, content.manifest.images, content.resolve_splits(split))
        _log.info(
            "ingested %d images (%.1f MB): validate %.2fs, store %.2fs, statistics %.2fs",
            len(content.manifest.images),
            content.manifest.size_bytes / 1e6,
            validated - started,
            stored - validated,
            time.perf_counter() - stored,
        )
        yield content, stats
