"""What a trainer uses inside its child process: report to the runner, learn when to stop.

Messages go as JSON lines to the inherited pipe `VTP_REPORT_FD`; stdout and stderr stay plain
logs. Stop requests arrive as signals whose handlers only set a flag, so the trainer stops at its
next batch boundary: SIGUSR1 is a user cancel, SIGTERM means the runner is shutting down (save a
`last` checkpoint and hand the job back). A cancel wins over a requeue.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from vtp_contracts.events.jobs import JobErrorCode
from vtp_trainer_runner.protocol import (
    CheckpointReady,
    Failed,
    Finished,
    Log,
    LogLevel,
    Message,
    Metrics,
    Progress,
    Started,
    StopKind,
    Terminal,
    encode,
)
from vtp_trainer_runner.report_pipe import ReportPipe

REPORT_FD_ENV = "VTP_REPORT_FD"
JOB_SPEC_ENV = "VTP_JOB_SPEC"
SPARE_ENV = "VTP_SPARE_DIR"  # set instead of VTP_JOB_SPEC in a spare child: the job comes on stdin
_STOP_SIGNALS: dict[int, StopKind] = {signal.SIGUSR1: "cancel", signal.SIGTERM: "requeue"}


def clean_metrics(values: Mapping[str, Any]) -> Metrics:
    """Finite floats only: JSON has no NaN, and a NaN metric carries no information anyway."""
    out: Metrics = {}
    for key, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value >= 0 else None


class TrainerContext:
    """The child's side of the protocol. Log lines are batched; every other message is sent at once."""

    def __init__(
        self, report_fd: int, spec_path: Path | None = None, flush_lines: int = 50, flush_seconds: float = 1.0
    ) -> None:
        self.spec_path = spec_path
        self.last_epoch = 0
        self.best_epoch: int | None = None
        self.best_metrics: Metrics = {}
        self.terminal: Terminal | None = None
        self._stop: StopKind | None = None
        self._previous_handlers: dict[int, Any] = {}
        # The runner gone means nobody uploads or reports: stop as if handed back.
        self._pipe = ReportPipe(report_fd, flush_lines, flush_seconds, lambda: self.request_stop("requeue"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, install_signal_handlers: bool = True) -> TrainerContext:
        """The context a runner-started child gets; installs the stop handlers (main thread only)."""
        if REPORT_FD_ENV not in environ:
            raise RuntimeError(f"{REPORT_FD_ENV} is not set: trainers are started by the runner (see docs)")
        fd = int(environ[REPORT_FD_ENV])
        os.set_inheritable(fd, False)  # subprocesses the trainer starts must not hold the runner's pipe open
        spec = environ.get(JOB_SPEC_ENV)
        ctx = cls(fd, Path(spec) if spec else None)
        if install_signal_handlers:
            ctx.install_signal_handlers()
        return ctx

    def install_signal_handlers(self) -> None:
        """SIGUSR1/SIGTERM set the stop flag; `close()` restores the previous handlers."""
        for signum in _STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only a flag: a signal handler may run between any two bytecodes, so it must not take locks or write.
        self.request_stop(_STOP_SIGNALS[signum])

    def request_stop(self, kind: StopKind) -> None:
        """Ask the trainer to stop; a cancel is never downgraded to a requeue."""
        if self._stop != "cancel":
            self._stop = kind

    def stop_requested(self) -> Literal["cancel", "requeue"] | None:
        """Poll at batch boundaries: `cancel` (the user), `requeue` (the runner is going away) or None."""
        return self._stop

    def started(self) -> None:
        self._send(Started(pid=os.getpid()))

    def progress(
        self,
        epoch: int,
        total_epochs: int,
        train_losses: Mapping[str, Any],
        val_metrics: Mapping[str, Any],
        learning_rate: float | None = None,
        epoch_seconds: float | None = None,
        eta_seconds: float | None = None,
        gpu_memory_mb: float | None = None,
    ) -> None:
        """One finished epoch (1-based)."""
        self.last_epoch = max(self.last_epoch, epoch)
        lr = learning_rate if learning_rate is not None and math.isfinite(learning_rate) else None
        self._send(
            Progress(
                epoch=epoch,
                total_epochs=max(total_epochs, epoch),
                train_losses=clean_metrics(train_losses),
                val_metrics=clean_metrics(val_metrics),
                learning_rate=lr,
                epoch_seconds=_finite(epoch_seconds),
                eta_seconds=_finite(eta_seconds),
                gpu_memory_mb=_finite(gpu_memory_mb),
            )
        )

    def checkpoint(self, kind: Literal["last", "best"], path: Path, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Hand a finished checkpoint file to the runner; the file must not be written again."""
        clean = clean_metrics(metrics)
        if kind == "best":
            self.best_epoch, self.best_metrics = (epoch or None), clean
        self._send(CheckpointReady(kind=kind, path=Path(path).absolute(), epoch=epoch, metrics=clean))

    def log(self, level: LogLevel, message: str) -> None:
        """Queue a line; sent every `flush_lines` lines or `flush_seconds`, errors at once."""
        self._pipe.queue(encode(Log(level=level, message=message)), urgent=level == "error")

    def fail(self, code: JobErrorCode, message: str, last_good_epoch: int | None = None) -> None:
        """End the attempt as failed (the first terminal message wins; later ones are dropped)."""
        good = self.last_epoch if last_good_epoch is None else last_good_epoch
        self._finish(Failed(code=code, message=message[:4000], last_good_epoch=good))

    def finished(
        self,
        status: Literal["completed", "cancelled", "stopped_for_requeue"] = "completed",
        best_epoch: int | None = None,
        best_metrics: Mapping[str, Any] | None = None,
        last_epoch: int | None = None,
    ) -> None:
        """End the attempt without failure; unset fields come from what was reported so far."""
        best = self.best_metrics if best_metrics is None else clean_metrics(best_metrics)
        self._finish(
            Finished(
                status=status,
                best_epoch=best_epoch if best_epoch is not None else self.best_epoch,
                best_metrics=best,
                last_epoch=self.last_epoch if last_epoch is None else last_epoch,
            )
        )

    def _finish(self, message: Terminal) -> None:
        if self.terminal is None:
            self.terminal = message
            self._send(message)

    def flush(self) -> None:
        """Send queued log lines now."""
        self._pipe.flush()

    def close(self, restore_signal_handlers: bool = True) -> None:
        """Flush, stop the flush thread and restore signal handlers; the fd stays open (the process owns it).

        A child about to exit keeps its handlers (`restore_signal_handlers=False`): a stop signal that
        crosses its final report must not kill it with the default action after the report went out.
        """
        self._pipe.close()
        if not restore_signal_handlers:
            return
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _send(self, message: Message) -> None:
        self._pipe.send(encode(message))
