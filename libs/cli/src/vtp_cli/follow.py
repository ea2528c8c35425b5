"""Following a training job live: the notifier's feed in a background thread, a progress bar over the
epochs, one row per finished epoch (losses and validation metrics), the ETA, and the final table.

The feed runs in a daemon thread so that Ctrl-C always reaches the main thread, which then asks
whether to cancel the job or only stop watching. If the feed goes quiet or away, the job is polled.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from vtp_cli.output import as_data, err, out
from vtp_client.errors import ApiError

TERMINAL = ("completed", "failed", "cancelled")
FEED_TYPES = ["job_status", "progress", "metrics", "error"]
QUIET_POLL_SECONDS = 10.0  # with no message for this long, ask the jobs service directly
FINAL_WAIT_SECONDS = 30.0  # the feed can be a moment ahead of the jobs service's own record
_METRIC_ORDER = ("precision", "recall", "mAP50", "mAP50-95", "top1", "top5")


@dataclass
class EpochTable:
    """Aligned text rows for finished epochs; the columns come from the first epoch seen."""

    losses: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)

    def header(self, data: dict[str, Any]) -> str:
        self.losses = list(data.get("train_losses", {}))
        self.metrics = metric_order(data.get("val_metrics", {}))
        names = self.losses + [val_name(m, self.losses) for m in self.metrics]
        self.widths = [max(10, len(n)) for n in names]
        cells = [f"{'epoch':>9}", *(f"{n:>{w}}" for n, w in zip(names, self.widths, strict=True)), f"{'time':>7}"]
        return " ".join(cells)

    def row(self, data: dict[str, Any]) -> str:
        losses, metrics = data.get("train_losses", {}), data.get("val_metrics", {})
        epoch = f"{data.get('epoch', '?')}/{data.get('total_epochs', '?')}"
        values = [losses.get(k) for k in self.losses] + [metrics.get(k) for k in self.metrics]
        cells = [f"{epoch:>9}", *(_cell(v, w) for v, w in zip(values, self.widths, strict=True))]
        seconds = data.get("epoch_seconds")
        cells.append(f"{seconds:>6.1f}s" if isinstance(seconds, int | float) else f"{'-':>7}")
        return " ".join(cells)


def metric_order(metrics: dict[str, Any]) -> list[str]:
    """Precision, recall, mAP50, mAP50-95 (or top1, top5) first, then the rest (validation losses)."""
    return [m for m in _METRIC_ORDER if m in metrics] + sorted(m for m in metrics if m not in _METRIC_ORDER)


def val_name(metric: str, losses: list[str]) -> str:
    """A validation metric's column name: `val_box_loss` where a training loss has the same name."""
    return f"val_{metric}" if metric in losses else metric


def _cell(value: Any, width: int) -> str:
    return f"{value:>{width}.4f}" if isinstance(value, int | float) else f"{'-':>{width}}"


def eta_text(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "ETA -"
    minutes, secs = divmod(int(seconds), 60)
    return f"ETA {minutes}:{secs:02d}" if minutes < 60 else f"ETA {minutes // 60}h{minutes % 60:02d}m"


@dataclass
class Outcome:
    job: dict[str, Any]
    detached: bool = False  # the user stopped watching; the job goes on


def ask_cancel() -> str:
    """`cancel` or `stop`; anything unreadable (no terminal, a second Ctrl-C) means stop watching."""
    while True:
        try:
            answer = typer.prompt("Cancel the job, or only stop watching it? [cancel/stop]", default="stop", err=True)
        except (typer.Abort, EOFError, KeyboardInterrupt):
            return "stop"
        if str(answer).strip().lower() in ("cancel", "c", "stop", "s"):
            return "cancel" if str(answer).strip().lower().startswith("c") else "stop"


def _pump(client: Any, job_id: str, inbox: queue.Queue[tuple[str, Any]], stop: threading.Event) -> None:
    try:
        for message in client.feed.follow_job(job_id, types=FEED_TYPES):
            inbox.put(("message", as_data(message)))
            if stop.is_set():
                return
        inbox.put(("end", None))
    except BaseException as exc:  # handed to the main thread, which decides
        inbox.put(("error", exc))


class Follower:
    """One job followed to its end (or until the user stops watching)."""

    def __init__(self, client: Any, job_id: str, console: Console | None = None, quiet: bool = False) -> None:
        self.client, self.job_id, self.quiet = client, job_id, quiet
        self.console = console or out
        self.table = EpochTable()
        self.header_shown = False
        # An epoch's time comes in its `progress` message, sent just before its `metrics` message.
        self.epoch_seconds: dict[Any, Any] = {}
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
            transient=True,
            disable=quiet,
        )
        self.task = self.progress.add_task("waiting for a runner", total=None, eta="")

    def run(self) -> Outcome:
        job = as_data(self.client.jobs.get(self.job_id))
        if job["status"] in TERMINAL:
            return Outcome(job)
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        threading.Thread(target=_pump, args=(self.client, self.job_id, inbox, stop), daemon=True).start()
        try:
            with self.progress:
                self._loop(inbox)
            return Outcome(self._final())
        except KeyboardInterrupt:
            self.progress.stop()
            return self._interrupted()
        finally:
            stop.set()

    def _loop(self, inbox: queue.Queue[tuple[str, Any]]) -> None:
        feed_alive = True
        while True:
            timeout = QUIET_POLL_SECONDS if feed_alive else 2.0
            try:
                kind, value = inbox.get(timeout=timeout)
            except queue.Empty:
                if self._poll_done():
                    return
                continue
            if kind == "error":
                if isinstance(value, KeyboardInterrupt):
                    raise value
                if isinstance(value, ApiError) and value.status in (401, 403):
                    raise value
                feed_alive = False  # go on by polling
                continue
            if kind == "end":  # the feed saw the job end
                feed_alive = False
                if self._poll_done():
                    return
                continue
            if self._on_message(value):
                return

    def _on_message(self, message: dict[str, Any]) -> bool:
        """Show one feed message; True once the job has ended."""
        kind, data = message.get("type"), message.get("data") or {}
        if kind == "progress":
            self.epoch_seconds[data.get("epoch")] = data.get("epoch_seconds")
            self.progress.update(
                self.task,
                total=data.get("total_epochs"),
                completed=data.get("epoch", 0),
                eta=eta_text(data.get("eta_seconds")),
            )
        elif kind == "metrics":
            if not self.header_shown:
                self._say(self.table.header(data))
                self.header_shown = True
            seconds = data.get("epoch_seconds", self.epoch_seconds.get(data.get("epoch")))
            self._say(self.table.row({**data, "epoch_seconds": seconds}))
            self.progress.update(self.task, total=data.get("total_epochs"), completed=data.get("epoch", 0))
        elif kind == "job_status":
            status = str(data.get("status", ""))
            runner = data.get("runner_id")
            self.progress.update(self.task, description=f"{status}" + (f" on {runner}" if runner else ""))
            return status in ("completed", "cancelled")
        elif kind == "error":
            error = data.get("error") or {}
            self._say(f"job failed: {error.get('code', '')} {error.get('message', '')}".rstrip())
            return True
        return False

    def _say(self, line: str) -> None:
        """A line above the bar; nothing with `--json` (stdout is for the final JSON only)."""
        if not self.quiet:
            self.progress.console.print(line, markup=False, highlight=False)

    def _poll_done(self) -> bool:
        job = as_data(self.client.jobs.get(self.job_id))
        total = job.get("total_epochs")
        self.progress.update(
            self.task, total=total, completed=job.get("epoch", 0), eta=eta_text(job.get("eta_seconds"))
        )
        return job["status"] in TERMINAL

    def _final(self) -> dict[str, Any]:
        deadline = time.monotonic() + FINAL_WAIT_SECONDS
        while True:
            job: dict[str, Any] = as_data(self.client.jobs.get(self.job_id))
            if job["status"] in TERMINAL or time.monotonic() > deadline:
                return job
            time.sleep(0.3)

    def _interrupted(self) -> Outcome:
        notice = err if self.quiet else self.console  # with --json, stdout holds only the job
        notice.print()
        answer = ask_cancel()
        if answer == "cancel":
            job = as_data(self.client.jobs.cancel(self.job_id, reason="cancelled from the vtp command line"))
            notice.print(f"cancel requested for job {self.job_id} (status {job['status']})")
            return Outcome(job)
        job = as_data(self.client.jobs.get(self.job_id))
        notice.print(f"stopped watching; job {self.job_id} is {job['status']}: vtp jobs watch {self.job_id}")
        return Outcome(job, detached=True)
