"""A training job and the state machine its events drive.

``pending -> queued -> running -> completed | failed | cancelled``, plus
``requeued`` (runner lost or handed the job back) which leads to a new attempt.
Every change comes from an event; an event of an older attempt than the job's
current one is stale and ignored, so a runner presumed dead can never overwrite
its successor's work; an illegal transition is ignored and reported, never applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
# A runner's heartbeat counts while its attempt is queued (not yet started) or running.
HEARTBEAT_STATES = frozenset({Status.QUEUED, Status.RUNNING})

# Lifecycle status reported by a runner (or the jobs service) -> the states it may leave from.
ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.PENDING, Status.REQUEUED}),
    Status.RUNNING: frozenset({Status.QUEUED}),
    Status.COMPLETED: frozenset({Status.RUNNING, Status.QUEUED}),
    Status.FAILED: frozenset({Status.PENDING, Status.RUNNING, Status.QUEUED}),
    Status.CANCELLED: frozenset({Status.PENDING, Status.RUNNING, Status.QUEUED}),
    Status.REQUEUED: frozenset({Status.RUNNING, Status.QUEUED}),
}


class JobNotFound(Exception):
    pass


class JobNotFinished(Exception):
    """Restart needs a finished job."""


class JobAlreadyFinished(Exception):
    """Cancel needs an unfinished job."""


@dataclass(frozen=True)
class Outcome:
    """What applying one event did: applied, or ignored with the reason (for logs and metrics)."""

    applied: bool
    reason: str = ""


APPLIED = Outcome(True)


def stale_attempt(current: int, attempt: int) -> Outcome | None:
    """Why an event of `attempt` does not apply to a job at attempt `current`; None when it may."""
    if attempt < current:
        return Outcome(False, f"stale attempt {attempt} < {current}")
    if attempt > current:
        return Outcome(False, f"future attempt {attempt} > {current}")
    return None


def heartbeat_outcome(status: Status, current: int, attempt: int) -> Outcome:
    """Whether a heartbeat of `attempt` counts for a job in `status` at attempt `current`.

    A pure rule on two columns, so heartbeats can be applied without loading the whole job.
    """
    if stale := stale_attempt(current, attempt):
        return stale
    if status not in HEARTBEAT_STATES:
        return Outcome(False, f"heartbeat while {status}")
    return APPLIED


@dataclass
class Job:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    framework: str
    task_type: str
    model: str
    dataset_id: uuid.UUID
    snapshot_id: uuid.UUID
    config: dict[str, Any]
    advanced_config: dict[str, Any]
    priority: int
    created_at: datetime
    split: dict[str, Any] | None = None
    snapshot_content_hash: str | None = None
    split_fingerprint: str | None = None
    base_checkpoint: dict[str, Any] | None = None  # fine-tuned from (see fine_tuning.py); fixed at submit
    status: Status = Status.PENDING
    attempt: int = 1
    runner_id: str | None = None
    epoch: int = 0
    total_epochs: int | None = None
    latest_metrics: dict[str, float] = field(default_factory=dict)
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    eta_seconds: float | None = None
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    last_good_epoch: int | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    cancel_requested_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def _stale(self, attempt: int) -> Outcome | None:
        return stale_attempt(self.attempt, attempt)

    def transition(self, to: Status, attempt: int, at: datetime, runner_id: str | None = None) -> Outcome:
        """Move to `to` if the state machine allows it from the current state."""
        if stale := self._stale(attempt):
            return stale
        if self.status == to:
            return Outcome(False, f"already {to}")
        if self.status not in ALLOWED_FROM[to]:
            return Outcome(False, f"illegal transition {self.status} -> {to}")
        self.status = to
        if to == Status.QUEUED:
            self.queued_at = at
        elif to == Status.RUNNING:
            self.started_at, self.runner_id, self.last_heartbeat_at = at, runner_id, at
        elif to in TERMINAL:
            self.finished_at, self.eta_seconds = at, None
        return APPLIED

    def start(self, attempt: int, at: datetime, runner_id: str | None) -> Outcome:
        """`started` from a runner; an epoch from another topic may have made the job running already."""
        if stale := self._stale(attempt):
            return stale
        if self.status == Status.RUNNING or (self.finished and self.started_at is None):
            self.runner_id, self.started_at = self.runner_id or runner_id, self.started_at or at
            return APPLIED
        return self.transition(Status.RUNNING, attempt, at, runner_id)

    def fail(self, attempt: int, at: datetime, code: str, message: str, last_good_epoch: int | None) -> Outcome:
        outcome = self.transition(Status.FAILED, attempt, at)
        if outcome.applied:
            self.error_code, self.error_message = code, message
            self.last_good_epoch = last_good_epoch if last_good_epoch is not None else self.epoch or None
        return outcome

    def record_progress(
        self, attempt: int, epoch: int, total: int, metrics: dict[str, float], eta: float | None, at: datetime
    ) -> Outcome:
        """An epoch finished; progress implies the attempt is running, even if `started` is late.

        Topics are not ordered against each other, so the attempt's terminal event may arrive
        before its last epochs: those are still recorded (they happened), without changing status.
        """
        if stale := self._stale(attempt):
            return stale
        if self.status == Status.QUEUED:
            self.transition(Status.RUNNING, attempt, at, self.runner_id)
        if epoch > self.epoch:  # a redelivered or reordered older epoch does not move the job back
            self.epoch, self.total_epochs, self.latest_metrics, self.eta_seconds = epoch, total, metrics, eta
        self.last_heartbeat_at = at
        return APPLIED

    def record_checkpoint(self, attempt: int, kind: str, info: dict[str, Any]) -> Outcome:
        if stale := self._stale(attempt):
            return stale
        current = self.checkpoints.get(kind)
        if current is not None and current.get("epoch", -1) >= info.get("epoch", -1):
            if current.get("uri") == info.get("uri") and not info.keys() <= current.keys():
                # The same upload told twice (a lifecycle pointer, then checkpoint.saved): keep what each knows.
                self.checkpoints[kind] = {**info, **current}
                return APPLIED
            return Outcome(False, f"not newer than the {kind} checkpoint held")
        self.checkpoints[kind] = info
        if kind == "best":
            self.best_epoch, self.best_metrics = info.get("epoch"), dict(info.get("metrics", {}))
        return APPLIED

    def heartbeat(self, attempt: int, runner_id: str, at: datetime) -> Outcome:
        """A sign of life; a reordered older heartbeat never moves `last_heartbeat_at` back."""
        outcome = heartbeat_outcome(self.status, self.attempt, attempt)
        if outcome.applied:
            self.runner_id = runner_id
            self.last_heartbeat_at = at if self.last_heartbeat_at is None else max(self.last_heartbeat_at, at)
        return outcome

    def requeue(self, at: datetime) -> int:
        """Hand the job to a new attempt (after `requeued`); returns the new attempt number."""
        self.attempt += 1
        self.status = Status.QUEUED
        self.queued_at, self.runner_id, self.started_at, self.last_heartbeat_at = at, None, None, None
        return self.attempt

    def redispatch(self, at: datetime) -> bool:
        """Hand the queued attempt to the runners once more (its command was lost): same attempt,
        so whichever copy a runner takes, its events apply; `queued_at` restarts the wait."""
        if self.status != Status.QUEUED:
            return False
        self.queued_at = at
        return True

    def restart(self, at: datetime) -> int:
        """A finished job runs again as a new attempt (user's restart); returns the attempt number."""
        if not self.finished:
            raise JobNotFinished(str(self.id))
        self.error_code = self.error_message = None
        self.finished_at = self.cancel_requested_at = None
        return self.requeue(at)

    def request_cancel(self, at: datetime) -> bool:
        """Ask for cancellation; True when the job ends right here (no runner holds it yet)."""
        if self.finished:
            raise JobAlreadyFinished(str(self.id))
        self.cancel_requested_at = at
        if self.status in (Status.PENDING, Status.QUEUED, Status.REQUEUED):
            self.status, self.finished_at, self.error_code = Status.CANCELLED, at, "USER_STOPPED"
            return True
        return False

    def resume_point(self) -> dict[str, Any] | None:
        """The checkpoint a new attempt continues from (the latest `last`)."""
        return self.checkpoints.get("last")
