"""Supervised background tasks: nothing a service runs in the background dies silently.

Every long-running task runs under :class:`Supervisor`. An unexpected exception is logged
with its traceback and the task restarts after an exponential backoff with jitter. A task
may also report failures it handles itself (a periodic round that raised, a relay that
cannot reach the broker) with :func:`report_failure`, and success with :func:`report_ok`.
Once a task fails ``unhealthy_after`` times in a row the supervisor's health check names
it and the service answers 503; a success (or a restarted run that stays up for
``stable_seconds``) makes it healthy again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from vtp_runtime.health import HealthCheck
from vtp_runtime.metrics import Sample

_log = logging.getLogger(__name__)
BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
Sleep = Callable[[float, asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Background:
    """A named background task: `run(stop)` works until `stop` is set, then returns."""

    name: str
    run: BackgroundTask


@dataclass(frozen=True)
class Backoff:
    """Delay before restart n (1-based): initial * 2**(n-1), capped, times a jitter in [1-jitter, 1]."""

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.5

    def delay(self, failures: int, uniform: Callable[[float, float], float]) -> float:
        base = min(self.maximum, self.initial * 2.0 ** max(0, failures - 1))
        return base * float(uniform(1.0 - self.jitter, 1.0))


@dataclass
class TaskState:
    """What the supervisor knows about one task (read by health checks and metrics)."""

    name: str
    clock: Callable[[], float]
    stable_seconds: float
    streak: int = 0  # failures in a row
    restarts: int = 0
    last_error: str | None = None
    running: bool = False
    run_started_at: float = 0.0
    reported_in_run: bool = False  # a failure was reported since the current run started

    def ok(self) -> None:
        self.streak, self.last_error = 0, None

    def failed(self, exc: BaseException, *, crashed: bool) -> int:
        if crashed and self._stable():  # it ran well for a long while before this crash
            self.streak = 0
        if not crashed:
            self.reported_in_run = True
        self.streak += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        return self.streak

    def failing(self, threshold: int) -> bool:
        return self.streak >= threshold and not (self.running and self._stable())

    def _stable(self) -> bool:
        stable = self.clock() - self.run_started_at >= self.stable_seconds
        return self.running and stable and not self.reported_in_run


_CURRENT: contextvars.ContextVar[TaskState | None] = contextvars.ContextVar("vtp_supervised_task", default=None)


def report_ok() -> None:
    """The calling supervised task did a unit of useful work: its failure streak ends."""
    if (state := _CURRENT.get()) is not None:
        state.ok()


def report_failure(exc: BaseException) -> None:
    """The calling supervised task handled a failure itself (and already logged it)."""
    if (state := _CURRENT.get()) is not None:
        state.failed(exc, crashed=False)


async def _sleep_unless_stopped(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass
class Supervisor:
    """Runs background tasks with restart, backoff and a health check; one per process."""

    backoff: Backoff = field(default_factory=Backoff)
    unhealthy_after: int = 3
    stable_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    uniform: Callable[[float, float], float] = random.uniform
    sleep: Sleep = _sleep_unless_stopped
    states: dict[str, TaskState] = field(default_factory=dict)

    async def run(self, task: Background, stop: asyncio.Event) -> None:
        """Run `task` until `stop` is set, restarting it whenever it raises or returns early."""
        state = self.states[task.name] = TaskState(task.name, self.clock, self.stable_seconds)
        _CURRENT.set(state)
        while not stop.is_set():
            state.running, state.run_started_at, state.reported_in_run = True, self.clock(), False
            try:
                await task.run(stop)
                if stop.is_set():
                    break
                error: BaseException = RuntimeError("returned while the service was running")
            except Exception as exc:
                if stop.is_set():  # shutting down: an error on the way out is not a crash
                    _log.debug("background task %s ended with %r during shutdown", task.name, exc)
                    break
                error = exc
            streak = state.failed(error, crashed=True)
            state.running = False
            state.restarts += 1
            delay = self.backoff.delay(streak, self.uniform)
            _log.error(
                "background task %s failed (%d in a row); restarting in %.1f s",
                task.name,
                streak,
                delay,
                exc_info=error,
            )
            await self.sleep(delay, stop)
        state.running = False

    def start(self, tasks: list[Background], stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """One asyncio task per background task, each under supervision."""
        names = [t.name for t in tasks]
        if len(set(names)) != len(names) or set(names) & set(self.states):
            raise ValueError(f"background task names must be unique: {names}")
        return [asyncio.create_task(self.run(t, stop), name=f"bg:{t.name}") for t in tasks]

    def failing(self) -> list[TaskState]:
        return [s for s in self.states.values() if s.failing(self.unhealthy_after)]

    async def probe(self) -> None:
        """Health probe: raises naming every task that keeps failing."""
        if bad := self.failing():
            raise RuntimeError("; ".join(f"{s.name}: {s.streak} failures in a row ({s.last_error})" for s in bad))

    def health_check(self) -> HealthCheck:
        return HealthCheck("background", self.probe)

    def samples(self) -> list[Sample]:
        """Restart counts and failing flags per task, for ``/metrics``."""
        failing = {s.name for s in self.failing()}
        rows: list[Sample] = []
        for s in self.states.values():
            rows.append(Sample("vtp_background_task_restarts_total", {"task": s.name}, float(s.restarts)))
            rows.append(Sample("vtp_background_task_failing", {"task": s.name}, float(s.name in failing)))
        return rows
