"""The job state machine: legal moves apply, everything else is ignored with a reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from vtp_jobs.domain.model import Job, Status, heartbeat_outcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _job(status: Status = Status.QUEUED) -> Job:
    job = Job(
        uuid.uuid4(),
        uuid.uuid4(),
        "j",
        "ultralytics",
        "detect",
        "yolo11n",
        uuid.uuid4(),
        uuid.uuid4(),
        {"epochs": 3},
        {},
        0,
        NOW,
    )
    job.status = status
    return job


def test_happy_path():
    job = _job()
    assert job.transition(Status.RUNNING, 1, NOW, "runner-a").applied
    assert job.record_progress(1, 1, 3, {"mAP50": 0.2}, 20.0, NOW).applied
    assert job.record_checkpoint(1, "best", {"epoch": 1, "metrics": {"mAP50": 0.2}, "uri": "s3://b/k"}).applied
    assert job.transition(Status.COMPLETED, 1, NOW).applied
    assert (job.status, job.epoch, job.best_epoch, job.runner_id) == (Status.COMPLETED, 1, 1, "runner-a")
    assert job.finished and job.eta_seconds is None


def test_duplicates_and_illegal_transitions_are_ignored():
    job = _job()
    job.transition(Status.RUNNING, 1, NOW, "a")
    assert not job.transition(Status.RUNNING, 1, NOW, "a").applied
    job.transition(Status.COMPLETED, 1, NOW)
    outcome = job.transition(Status.RUNNING, 1, NOW, "b")
    assert not outcome.applied and "illegal" in outcome.reason
    assert not job.fail(1, NOW, "OOM", "late", None).applied
    assert job.status == Status.COMPLETED and job.error_code is None


def test_progress_before_started_means_running():
    job = _job()
    assert job.record_progress(1, 1, 3, {}, None, NOW).applied
    assert job.status == Status.RUNNING


def test_reordered_progress_does_not_move_backwards():
    job = _job(Status.RUNNING)
    job.record_progress(1, 2, 3, {"mAP50": 0.5}, 1.0, NOW)
    job.record_progress(1, 1, 3, {"mAP50": 0.1}, 9.0, NOW)
    assert job.epoch == 2 and job.latest_metrics == {"mAP50": 0.5}


def test_stale_attempt_is_fenced_off_after_requeue():
    job = _job(Status.RUNNING)
    job.record_progress(1, 1, 3, {}, None, NOW)
    job.record_checkpoint(1, "last", {"epoch": 1, "uri": "s3://b/last"})
    assert job.transition(Status.REQUEUED, 1, NOW).applied
    assert job.requeue(NOW) == 2 and job.status == Status.QUEUED
    assert job.resume_point() == {"epoch": 1, "uri": "s3://b/last"}
    ghost = job.record_progress(1, 2, 3, {}, None, NOW)  # the lost runner wakes up
    assert not ghost.applied and "stale" in ghost.reason
    assert not job.transition(Status.COMPLETED, 1, NOW).applied
    assert not job.heartbeat(1, "ghost", NOW).applied
    assert job.transition(Status.RUNNING, 2, NOW, "runner-b").applied
    assert job.runner_id == "runner-b"


def test_failure_keeps_code_and_last_good_epoch():
    job = _job(Status.RUNNING)
    job.record_progress(1, 2, 3, {}, None, NOW)
    assert job.fail(1, NOW, "OOM", "CUDA out of memory", None).applied
    assert (job.status, job.error_code, job.last_good_epoch) == (Status.FAILED, "OOM", 2)


def test_older_checkpoint_never_replaces_newer():
    job = _job(Status.RUNNING)
    job.record_checkpoint(1, "last", {"epoch": 2})
    assert not job.record_checkpoint(1, "last", {"epoch": 1}).applied
    assert job.checkpoints["last"]["epoch"] == 2


def test_cancel_from_queued_and_heartbeat_rules():
    job = _job()
    assert job.heartbeat(1, "a", NOW).applied
    assert job.transition(Status.CANCELLED, 1, NOW).applied
    assert not job.heartbeat(1, "a", NOW).applied


def test_heartbeat_rule_without_the_whole_job_and_time_never_moves_back():
    assert heartbeat_outcome(Status.RUNNING, 2, 2).applied
    assert "stale" in heartbeat_outcome(Status.RUNNING, 2, 1).reason
    assert "future" in heartbeat_outcome(Status.QUEUED, 2, 3).reason
    assert not heartbeat_outcome(Status.COMPLETED, 1, 1).applied
    job = _job(Status.RUNNING)
    job.heartbeat(1, "a", NOW + timedelta(seconds=5))
    assert job.heartbeat(1, "a", NOW).applied  # reordered: accepted, but the newer time stays
    assert job.last_heartbeat_at == NOW + timedelta(seconds=5)


def test_late_progress_after_completion_is_still_recorded():
    job = _job(Status.RUNNING)
    job.transition(Status.COMPLETED, 1, NOW)
    assert job.record_progress(1, 3, 3, {"mAP50": 0.9}, None, NOW).applied
    assert job.status == Status.COMPLETED and job.epoch == 3


def test_started_after_progress_still_names_the_runner():
    job = _job()
    job.record_progress(1, 1, 3, {}, None, NOW)
    assert job.start(1, NOW, "runner-a").applied
    assert job.status == Status.RUNNING and job.runner_id == "runner-a"
