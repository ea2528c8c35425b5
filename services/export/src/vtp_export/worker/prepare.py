"""What an exporter child needs, made local first: the verified checkpoint and the job's dataset."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vtp_contracts.events.exports import ExportRequested
from vtp_dice.materialize import materialize
from vtp_dice.splits import SplitConfig, assign, labeled_splits, strata_from_docs
from vtp_dice.store_source import StoreSnapshotSource
from vtp_runtime.storage import ObjectStore, StorageError

DICE_TASK = {"detect": "detection", "segment": "segmentation", "classify": "classification", "pose": "pose"}


class AttemptFailure(Exception):
    """The attempt cannot succeed; `code` goes into export.completed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def checkpoint(cmd: ExportRequested, store: ObjectStore, dest: Path) -> Path:
    """Download the checkpoint and verify it against the sha256 the jobs service recorded."""
    os.makedirs(dest.parent, exist_ok=True)
    try:
        await store.get_file(store.parse_uri(cmd.checkpoint.uri), dest)
    except StorageError as exc:
        raise AttemptFailure("CHECKPOINT_NOT_FOUND", f"cannot fetch {cmd.checkpoint.uri}: {exc}") from exc
    if await asyncio.to_thread(file_sha256, dest) != cmd.checkpoint.sha256:
        os.unlink(dest)
        raise AttemptFailure("CHECKPOINT_CORRUPT", f"{cmd.checkpoint.uri} does not match its recorded SHA-256")
    return dest


def digest_and_size(path: Path) -> tuple[str, int]:
    return file_sha256(path), path.stat().st_size


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


async def dataset(cmd: ExportRequested, store: ObjectStore, cache_dir: Path, cache_max: int) -> Path:
    """The job's pinned snapshot laid out for Ultralytics (data.yaml), its frozen or overridden split."""
    if not cmd.snapshot_content_hash or cmd.task_type is None:
        raise AttemptFailure("DATASET_NOT_FOUND", "the export names no snapshot content")
    source = StoreSnapshotSource(store, cmd.snapshot_content_hash, str(cmd.snapshot_id), asyncio.get_running_loop())
    task = DICE_TASK[cmd.task_type]
    try:
        splits = await asyncio.to_thread(_splits, source, cmd)
        return await asyncio.to_thread(materialize, source, task, cache_dir, splits, cache_max)  # type: ignore[arg-type]
    except (StorageError, ValueError, KeyError) as exc:
        raise AttemptFailure("DATASET_NOT_FOUND", f"snapshot {cmd.snapshot_id} unreadable: {exc}") from exc


def _splits(source: StoreSnapshotSource, cmd: ExportRequested) -> dict[str, Any]:
    manifest = source.manifest()
    if cmd.split is None:
        if not cmd.split_fingerprint:
            raise ValueError("no split assignment")
        frozen: dict[str, Any] = json.loads(source.blob(cmd.split_fingerprint))
        return frozen
    docs = {t: source.annotation_doc(t) for t in manifest.tasks}
    config = SplitConfig.from_dict(cmd.split)
    names = [i.file_name for i in manifest.images]
    return dict(assign(names, labeled_splits(docs), strata_from_docs(docs), config))
