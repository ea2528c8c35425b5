"""Preparing an attempt that starts from a checkpoint: downloaded, verified by SHA-256, only then used.

A real local object store under a temporary directory; the snapshot is never reached (checkpoints
are fetched first), so a command naming no snapshot shows how far preparation got.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vtp_contracts.base import ObjectRef
from vtp_contracts.events.jobs import CheckpointPointer, JobRequested
from vtp_runtime.storage import LocalObjectStore
from vtp_trainer_runner.prepare import AttemptFailure, prepare

WEIGHTS = b"pretend these are the weights of an earlier job"


def command(**fields: Any) -> JobRequested:
    base = {
        "job_id": uuid.uuid4(),
        "project_id": uuid.uuid4(),
        "attempt": 1,
        "name": "tuned",
        "framework": "ultralytics",
        "task_type": "detect",
        "model": str(uuid.uuid4()),  # the earlier job
        "dataset_id": uuid.uuid4(),
        "snapshot_id": uuid.uuid4(),
        "config": {"epochs": 1, "imgsz": 64},
        "requested_at": datetime.now(UTC),
    }
    return JobRequested.model_validate(base | fields)


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects", "vtp")


async def _put(store: LocalObjectStore, data: bytes = WEIGHTS) -> ObjectRef:
    info = await store.put_bytes(f"checkpoints/{uuid.uuid4()}/best.pt", data)
    return ObjectRef(uri=info.uri, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


async def _prepare(store: LocalObjectStore, tmp_path: Path, cmd: JobRequested) -> AttemptFailure:
    with pytest.raises(AttemptFailure) as failure:
        await prepare(cmd, store, tmp_path / "work", tmp_path / "cache", 1 << 20, "cpu")
    return failure.value


async def test_verified_weights_are_kept_for_the_trainer(store: LocalObjectStore, tmp_path: Path) -> None:
    cmd = command(base_checkpoint=await _put(store), snapshot_content_hash=None)
    failure = await _prepare(store, tmp_path, cmd)
    assert failure.code == "DATASET_NOT_FOUND"  # got past the checkpoint, to the snapshot this command lacks
    weights = tmp_path / "work" / str(cmd.job_id) / "attempt-1" / "weights.pt"
    assert weights.read_bytes() == WEIGHTS


async def test_a_checkpoint_that_does_not_match_its_sha256_is_never_loaded(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    ref = await _put(store)
    await store.put_bytes(store.parse_uri(ref.uri), b"tampered after it was recorded")
    cmd = command(base_checkpoint=ref)
    failure = await _prepare(store, tmp_path, cmd)
    assert failure.code == "CHECKPOINT_INTEGRITY" and ref.sha256 in str(failure)
    attempt_dir = tmp_path / "work" / str(cmd.job_id) / "attempt-1"
    assert not any(attempt_dir.iterdir()), "neither the file nor a partial download is left behind"


async def test_a_resume_checkpoint_is_verified_too(store: LocalObjectStore, tmp_path: Path) -> None:
    ref = await _put(store)
    pointer = CheckpointPointer(uri=ref.uri, sha256="0" * 64, epoch=1)
    failure = await _prepare(store, tmp_path, command(model="yolo11n", resume_from=pointer))
    assert failure.code == "CHECKPOINT_INTEGRITY"


async def test_a_job_id_without_a_resolved_checkpoint_is_an_invalid_config(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    failure = await _prepare(store, tmp_path, command())  # e.g. from a jobs service that predates fine-tuning
    assert failure.code == "INVALID_CONFIG" and "no checkpoint" in str(failure)


async def test_a_missing_checkpoint_object_fails_the_attempt(store: LocalObjectStore, tmp_path: Path) -> None:
    ref = ObjectRef(uri=store.uri("checkpoints/gone/best.pt"), sha256="0" * 64, size_bytes=1)
    failure = await _prepare(store, tmp_path, command(base_checkpoint=ref))
    assert failure.code == "TRAINER_CRASHED" and "cannot fetch" in str(failure)
