"""One job attempt on this runner: prepare, supervise the trainer child, report everything.

The child is the slot's spare when the runner has one (warmed up while the job was waiting, or
while `prepare` runs); it gets the spec once everything is local.

Events leave in this order per attempt: `started`, then heartbeats, epochs,
checkpoints (uploaded before they are announced) and log batches, then exactly
one terminal lifecycle event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vtp_contracts.base import ObjectRef
from vtp_contracts.catalog import CHECKPOINT_SAVED, EPOCH_PROGRESS, JOB_HEARTBEAT, JOB_LIFECYCLE, JOB_LOG
from vtp_contracts.events.jobs import (
    CheckpointPointer,
    CheckpointSaved,
    EpochProgress,
    JobError,
    JobHeartbeat,
    JobLifecycle,
    JobLog,
    JobRequested,
    LogLine,
)
from vtp_runtime.messaging.kafka import PublishError
from vtp_runtime.storage import ObjectStore, StorageError
from vtp_trainer_runner.prepare import AttemptFailure, prepare
from vtp_trainer_runner.protocol import CheckpointReady, Failed, Finished, Log, Progress
from vtp_trainer_runner.reporter import Reporter
from vtp_trainer_runner.spec import JobSpec
from vtp_trainer_runner.supervisor import JobProcess

_log = logging.getLogger(__name__)
LOG_BATCH_LINES = 50


def _text(value: str, limit: int) -> str:
    """Trainer text as consumers can store it: PostgreSQL text and JSONB refuse NUL, so such an
    event would only end as a dead letter (and a `failed` that never lands leaves the job running)."""
    return value[:limit].replace("\x00", "\ufffd")


@dataclass
class AttemptDeps:
    store: ObjectStore
    reporter: Reporter
    runner_id: str
    work_root: Path
    cache_dir: Path
    cache_max_bytes: int
    heartbeat_seconds: float
    log_flush_seconds: float


@dataclass
class Attempt:
    """A running attempt; the runner calls cancel()/hand_back() on it."""

    cmd: JobRequested
    deps: AttemptDeps
    gpus: list[int]
    spare: JobProcess | None = None  # a warm child for this slot, given the spec once it is prepared
    started: asyncio.Event = field(default_factory=asyncio.Event)
    start_error: Exception | None = None  # why `started` could not be sent (the command then comes again)
    process: JobProcess | None = None
    stop: str | None = None  # "cancel" or "requeue", remembered if the child is not up yet
    outcome: str | None = None  # the terminal status sent, once it is out
    last: CheckpointPointer | None = None
    epoch: int = 0
    _uploads: int = 0
    _logs: list[LogLine] = field(default_factory=list)

    def cancel(self) -> None:
        self.stop = "cancel"
        if self.process is not None:
            self.process.cancel()

    def hand_back(self) -> None:
        self.stop = "requeue"
        if self.process is not None:
            self.process.stop_for_requeue()

    def _ids(self) -> dict[str, object]:
        return {"job_id": self.cmd.job_id, "project_id": self.cmd.project_id, "attempt": self.cmd.attempt}

    async def _lifecycle(self, status: str, error: JobError | None = None) -> None:
        await self.deps.reporter.emit(
            JOB_LIFECYCLE,
            JobLifecycle(
                **self._ids(),
                status=status,
                runner_id=self.deps.runner_id,
                error=error,
                epoch=self.epoch,
                checkpoint=self.last if status in ("requeued", "cancelled") else None,
                occurred_at=datetime.now(UTC),
            ),
        )
        if status != "started":
            self.outcome = status

    async def run(self) -> None:
        try:
            await self._lifecycle("started")
        except Exception as exc:  # nothing ran yet: the runner gives the command back
            _log.error("job %s attempt %d: `started` could not be sent: %s", self.cmd.job_id, self.cmd.attempt, exc)
            self.start_error = exc
            return
        self.started.set()
        beat = asyncio.create_task(self._heartbeats())
        try:
            await self._run()
        except AttemptFailure as exc:
            await self._lifecycle(
                "failed",
                JobError(
                    code=exc.code,
                    message=_text(str(exc), 2000),
                    last_good_epoch=self.epoch or None,
                ),
            )
        except Exception as exc:
            _log.exception("attempt %s/%s crashed in the runner", self.cmd.job_id, self.cmd.attempt)
            await self._lifecycle(
                "failed",
                JobError(code="TRAINER_CRASHED", message=_text(str(exc), 2000), last_good_epoch=self.epoch or None),
            )
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _run(self) -> None:
        device = ",".join(str(g) for g in self.gpus) if self.gpus else "cpu"
        began = time.monotonic()
        spec = await prepare(
            self.cmd, self.deps.store, self.deps.work_root, self.deps.cache_dir, self.deps.cache_max_bytes, device
        )
        if self.stop == "cancel":
            await self._lifecycle("cancelled")
            return
        prepared = time.monotonic()
        self.process, how = await self._launch(spec)
        _log.info(
            "job %s attempt %d: prepared in %.2f s; trainer pid %d %s in %.2f s",
            self.cmd.job_id,
            self.cmd.attempt,
            prepared - began,
            self.process.pid,
            how,
            time.monotonic() - prepared,
        )
        if self.stop == "cancel":
            self.process.cancel()
        elif self.stop == "requeue":
            self.process.stop_for_requeue()
        terminal: Finished | Failed | None = None
        flusher = asyncio.create_task(self._flush_logs_periodically())
        try:
            async for message in self.process.messages():
                if isinstance(message, Progress):
                    self.epoch = max(self.epoch, message.epoch)
                    await self.deps.reporter.emit(
                        EPOCH_PROGRESS, EpochProgress(**self._ids(), **message.model_dump(exclude={"type"}))
                    )
                elif isinstance(message, CheckpointReady):
                    await self._checkpoint(message)
                elif isinstance(message, Log):
                    line = LogLine(time=message.time, level=message.level, message=_text(message.message, 4000))
                    self._logs.append(line)
                    if message.level == "error" or len(self._logs) >= LOG_BATCH_LINES:
                        await self._flush_logs()
                elif isinstance(message, Finished | Failed):
                    terminal = message
        finally:
            flusher.cancel()
            await self._flush_logs()
        returncode = await self.process.wait()
        await self._finish(terminal, returncode)

    async def _launch(self, spec: JobSpec) -> tuple[JobProcess, str]:
        """The spare, given the spec; a child started cold when there is none or it died waiting."""
        spare, self.spare = self.spare, None
        if spare is not None:
            if await spare.assign(spec):
                return spare, "given the job (spare)"
            _log.warning("spare trainer child %d is gone (exit %s); starting one cold", spare.pid, spare.returncode)
            await spare.close()
        process = await JobProcess.start(
            spec, env_overrides={"YOLO_CONFIG_DIR": str(spec.work_dir / "yolo")}, gpus=self.gpus
        )
        return process, "started cold"

    async def _finish(self, terminal: Finished | Failed | None, returncode: int) -> None:
        if isinstance(terminal, Finished):
            status = {"completed": "completed", "cancelled": "cancelled", "stopped_for_requeue": "requeued"}
            await self._lifecycle(status[terminal.status])
        elif isinstance(terminal, Failed):
            await self._lifecycle(
                "failed",
                JobError(
                    code=terminal.code,
                    message=_text(terminal.message, 10_000),
                    last_good_epoch=terminal.last_good_epoch,
                ),
            )
        else:
            raise AttemptFailure("TRAINER_CRASHED", f"trainer exited with {returncode} without a final report")

    async def _checkpoint(self, message: CheckpointReady) -> None:
        # A fresh key per upload: a hand-back save may carry the same epoch as the last regular one,
        # and overwriting that object would break the (uri, sha256) pair already announced for it.
        self._uploads += 1
        key = (
            f"checkpoints/{self.cmd.job_id}/attempt-{self.cmd.attempt}/"
            f"{self._uploads:04d}-{message.kind}-epoch{message.epoch}.pt"
        )
        try:
            info = await self.deps.store.put_file(key, message.path)
        except (StorageError, OSError) as exc:
            if self.process is not None:
                self.process.cancel()
            raise AttemptFailure("CHECKPOINT_UPLOAD_FAILED", f"{message.kind} checkpoint: {exc}") from exc
        ref = ObjectRef(uri=info.uri, sha256=info.sha256 or "", size_bytes=info.size_bytes)
        if message.kind == "last":
            self.last = CheckpointPointer(uri=ref.uri, sha256=ref.sha256, epoch=message.epoch)
        await self.deps.reporter.emit(
            CHECKPOINT_SAVED,
            CheckpointSaved(
                **self._ids(),
                kind=message.kind,
                epoch=message.epoch,
                checkpoint=ref,
                metrics=message.metrics,
            ),
        )

    async def _flush_logs(self) -> None:
        if self._logs:
            lines, self._logs = self._logs, []
            await self.deps.reporter.emit(JOB_LOG, JobLog(**self._ids(), lines=lines))

    async def _flush_logs_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.deps.log_flush_seconds)
            try:
                await self._flush_logs()
            except PublishError as exc:  # those lines are lost; the next flush tries again
                _log.warning("job %s: log lines could not be sent: %s", self.cmd.job_id, exc)

    async def _heartbeats(self) -> None:
        # A beat that cannot be sent is logged and the next one tries again: this loop must outlive
        # a broker blip, or the watchdog would requeue a job that is still training here.
        while True:
            try:
                await self.deps.reporter.emit(
                    JOB_HEARTBEAT,
                    JobHeartbeat(
                        **self._ids(),
                        runner_id=self.deps.runner_id,
                        epoch=self.epoch or None,
                        sent_at=datetime.now(UTC),
                    ),
                )
            except PublishError as exc:
                _log.warning("job %s: heartbeat could not be sent: %s", self.cmd.job_id, exc)
            await asyncio.sleep(self.deps.heartbeat_seconds)
