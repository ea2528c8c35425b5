"""Everything a trainer child needs, made local first: config, dataset layout, checkpoints.

Failures here carry the job error codes the platform reports: a config the trainer
cannot take is INVALID_CONFIG, a snapshot that cannot be read is DATASET_NOT_FOUND, a
checkpoint whose bytes do not match the SHA-256 it was recorded with is CHECKPOINT_INTEGRITY
(checkpoints are pickles: loading an unverified one would run whatever it contains).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from vtp_contracts.events.jobs import JobRequested
from vtp_dice.materialize import materialize
from vtp_dice.splits import SplitConfig, assign, labeled_splits, strata_from_docs
from vtp_dice.store_source import StoreSnapshotSource
from vtp_runtime.storage import ObjectStore, StorageError
from vtp_trainer_runner.spec import JobSpec
from vtp_trainers.validate import validate_job_config

DICE_TASK = {"detect": "detection", "segment": "segmentation", "classify": "classification", "pose": "pose"}


class AttemptFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def prepare(
    cmd: JobRequested, store: ObjectStore, work_root: Path, cache_dir: Path, cache_max: int, device: str
) -> JobSpec:
    resolved, problems = validate_job_config(cmd.framework, cmd.task_type, cmd.model, cmd.config, cmd.advanced_config)
    if resolved is None or problems:
        raise AttemptFailure("INVALID_CONFIG", "; ".join(f"{p.pointer}: {p.message}" for p in problems))
    work_dir = work_root / str(cmd.job_id) / f"attempt-{cmd.attempt}"
    resume = (
        await _download(store, cmd.resume_from.uri, cmd.resume_from.sha256, work_dir / "resume.pt")
        if (cmd.resume_from)
        else None
    )
    weights = None
    if resolved.model_kind == "checkpoint" and resume is None:  # a resume carries its own weights
        if cmd.base_checkpoint is None:
            raise AttemptFailure("INVALID_CONFIG", f"model {cmd.model} names a job, but no checkpoint was resolved")
        base = cmd.base_checkpoint
        weights = await _download(store, base.uri, base.sha256, work_dir / "weights.pt")
    data = await _dataset(cmd, store, cache_dir, cache_max)
    kwargs = {**resolved.to_train_kwargs(), "device": device}
    return JobSpec(
        job_id=cmd.job_id,
        project_id=cmd.project_id,
        attempt=cmd.attempt,
        framework=cmd.framework,
        task_type=cmd.task_type,
        model=resolved.model,
        model_yaml=resolved.model_yaml,
        train_kwargs=kwargs,
        data=data,
        work_dir=work_dir,
        resume_from=resume,
        pretrained_weights=weights,
        time_limit_seconds=resolved.basic.time_limit_minutes * 60 if resolved.basic.time_limit_minutes else None,
    )


async def _dataset(cmd: JobRequested, store: ObjectStore, cache_dir: Path, cache_max: int) -> Path:
    if not cmd.snapshot_content_hash:
        raise AttemptFailure("DATASET_NOT_FOUND", "the job names no snapshot content")
    source = StoreSnapshotSource(store, cmd.snapshot_content_hash, str(cmd.snapshot_id), asyncio.get_running_loop())
    task = DICE_TASK[cmd.task_type]
    try:
        splits = await asyncio.to_thread(_splits, source, cmd, task)
        return await asyncio.to_thread(materialize, source, task, cache_dir, splits, cache_max)  # type: ignore[arg-type]
    except (StorageError, ValueError, KeyError) as exc:
        raise AttemptFailure("DATASET_NOT_FOUND", f"snapshot {cmd.snapshot_id} unreadable: {exc}") from exc


def _splits(source: StoreSnapshotSource, cmd: JobRequested, task: str) -> dict[str, Any]:
    """The job's split override resolved now, else the split frozen with the snapshot."""
    manifest = source.manifest()
    if cmd.split is None:
        if not cmd.split_fingerprint:
            raise ValueError("no split assignment")
        frozen: dict[str, Any] = json.loads(source.blob(cmd.split_fingerprint))
        return frozen
    docs = {t: source.annotation_doc(t) for t in manifest.tasks}
    config = SplitConfig.from_dict(cmd.split.model_dump())
    names = [i.file_name for i in manifest.images]
    return dict(assign(names, labeled_splits(docs), strata_from_docs(docs), config))


async def _download(store: ObjectStore, uri: str, sha256: str, dest: Path) -> Path:
    """Fetch `uri` to `dest`; it appears there only once its bytes match `sha256`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        await store.get_file(store.parse_uri(uri), part)
    except StorageError as exc:
        part.unlink(missing_ok=True)
        raise AttemptFailure("TRAINER_CRASHED", f"cannot fetch {uri}: {exc}") from exc
    digest = await asyncio.to_thread(_sha256, part)
    if digest != sha256:
        part.unlink(missing_ok=True)
        raise AttemptFailure("CHECKPOINT_INTEGRITY", f"{uri} has SHA-256 {digest}, recorded {sha256}; not loaded")
    part.replace(dest)
    return dest


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
