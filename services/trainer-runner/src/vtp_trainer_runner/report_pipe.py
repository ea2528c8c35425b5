"""The child's end of the report pipe: ordered JSON lines, log lines batched, safe across forks.

Log lines wait until `flush_lines` are queued or `flush_seconds` pass (a daemon thread), so a
chatty trainer costs a write per batch, not per line; every other message is written at once,
after the queued lines, so the runner reads everything in the order it happened.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

_PIPES: weakref.WeakSet[ReportPipe] = weakref.WeakSet()


class ReportPipe:
    """Writes to an inherited pipe fd; `on_broken` runs once if the reader (the runner) is gone."""

    def __init__(self, fd: int, flush_lines: int, flush_seconds: float, on_broken: Callable[[], None]) -> None:
        self.fd, self.flush_lines, self.on_broken = fd, flush_lines, on_broken
        self.broken = False
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._closed = threading.Event()
        threading.Thread(target=self._flush_every, args=(flush_seconds,), name="vtp-log-flush", daemon=True).start()
        _PIPES.add(self)

    def queue(self, line: bytes, urgent: bool = False) -> None:
        """Queue a log line; `urgent` (errors) flushes at once."""
        if os.getpid() != self._pid:  # a forked worker (e.g. a data loader): its output stays on stderr
            return
        with self._lock:
            self._pending.append(line)
            due = urgent or len(self._pending) >= self.flush_lines
        if due:
            self.flush()

    def send(self, line: bytes) -> None:
        """Write a line now, after whatever is queued."""
        with self._lock:
            data, self._pending = b"".join([*self._pending, line]), []
            self._write(data)

    def flush(self) -> None:
        with self._lock:
            data, self._pending = b"".join(self._pending), []
            self._write(data)

    def close(self) -> None:
        """Flush and stop the flush thread; the fd stays open (the process owns it)."""
        self._closed.set()
        self.flush()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.broken:
            try:
                view = view[os.write(self.fd, view) :]
            except BrokenPipeError:  # Python ignores SIGPIPE, so a vanished reader shows up here
                self.broken = True
                self.on_broken()

    def _flush_every(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            self.flush()

    def _after_fork(self) -> None:
        # A fork (data loader workers) copies the lock as it is, possibly held by the flush thread.
        self._lock, self._pending = threading.Lock(), []


def _reset_after_fork() -> None:
    for pipe in list(_PIPES):
        pipe._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
