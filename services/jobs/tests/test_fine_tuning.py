"""Which recorded checkpoint a fine-tuning job starts from, and when there is none to use."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from vtp_jobs.domain.fine_tuning import CheckpointChoice, CheckpointIncompatible, CheckpointNotFound, base_checkpoint
from vtp_jobs.domain.model import Job, Status

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BEST = {"uri": "s3://vtp/checkpoints/a/best.pt", "sha256": "ab" * 32, "size_bytes": 10, "epoch": 3, "metrics": {}}
LAST = {"uri": "s3://vtp/checkpoints/a/last.pt", "sha256": "cd" * 32, "size_bytes": 11, "epoch": 4, "attempt": 1}


def _source(status: Status = Status.COMPLETED, task: str = "detect", **checkpoints: dict) -> Job:
    job = Job(
        uuid.uuid4(), uuid.uuid4(), "a", "ultralytics", task, "yolo11n", uuid.uuid4(), uuid.uuid4(), {}, {}, 0, NOW
    )
    job.status, job.checkpoints = status, dict(checkpoints)
    return job


def test_best_is_the_default_and_last_can_be_chosen() -> None:
    source = _source(best=BEST, last=LAST)
    best = base_checkpoint(source, CheckpointChoice(source.id), "ultralytics", "detect")
    assert best == {
        "job_id": str(source.id),
        "checkpoint": "best",
        "epoch": 3,
        "uri": BEST["uri"],
        "sha256": BEST["sha256"],
        "size_bytes": 10,
    }
    last = base_checkpoint(source, CheckpointChoice(source.id, "last"), "ultralytics", "detect")
    assert (last["checkpoint"], last["uri"], last["epoch"]) == ("last", LAST["uri"], 4)


def test_a_failed_or_cancelled_job_still_offers_what_it_recorded() -> None:
    for status in (Status.FAILED, Status.CANCELLED):
        source = _source(status, last=LAST)
        assert base_checkpoint(source, CheckpointChoice(source.id, "last"), "ultralytics", "detect")["uri"]


def test_missing_and_foreign_jobs_read_the_same() -> None:
    """The caller's project sees no job of another project: the repository gives None for both."""
    job_id = uuid.uuid4()
    with pytest.raises(CheckpointNotFound, match=str(job_id)) as missing:
        base_checkpoint(None, CheckpointChoice(job_id), "ultralytics", "detect")
    assert missing.value.code == "checkpoint_not_found"


@pytest.mark.parametrize(
    ("source", "kind", "reason"),
    [
        (_source(Status.RUNNING, best=BEST), "best", "running"),
        (_source(Status.QUEUED), "best", "queued"),
        (_source(last=LAST), "best", "no best checkpoint"),
        (_source(best=BEST), "last", "no last checkpoint"),
        (_source(last={k: v for k, v in LAST.items() if k != "size_bytes"}), "last", "no last checkpoint"),
    ],
)
def test_no_usable_checkpoint(source: Job, kind: str, reason: str) -> None:
    with pytest.raises(CheckpointNotFound, match=reason):
        base_checkpoint(source, CheckpointChoice(source.id, kind), "ultralytics", "detect")  # type: ignore[arg-type]


def test_a_checkpoint_of_another_task_is_incompatible() -> None:
    source = _source(task="segment", best=BEST)
    with pytest.raises(CheckpointIncompatible, match="segment") as exc:
        base_checkpoint(source, CheckpointChoice(source.id), "ultralytics", "detect")
    assert exc.value.code == "checkpoint_incompatible"


def test_the_same_upload_told_twice_keeps_what_each_event_knows() -> None:
    """A cancelled attempt's lifecycle pointer (no size) may arrive before its checkpoint.saved."""
    job = _source(Status.RUNNING)
    pointer = {"uri": LAST["uri"], "sha256": LAST["sha256"], "epoch": 4, "attempt": 1}
    assert job.record_checkpoint(1, "last", pointer).applied
    assert job.record_checkpoint(1, "last", LAST | {"metrics": {"mAP50": 0.1}}).applied
    assert job.checkpoints["last"]["size_bytes"] == 11 and job.checkpoints["last"]["metrics"] == {"mAP50": 0.1}
    assert not job.record_checkpoint(1, "last", LAST).applied, "a plain redelivery changes nothing"
    other = {**LAST, "uri": "s3://vtp/checkpoints/a/older.pt", "size_bytes": 1}
    assert not job.record_checkpoint(1, "last", other).applied and job.checkpoints["last"]["uri"] == LAST["uri"]
