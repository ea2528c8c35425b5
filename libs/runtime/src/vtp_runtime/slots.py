"""A bounded number of slots, each running at most one piece of work as a supervised asyncio task.

A worker that takes commands from Kafka (see :class:`~vtp_runtime.messaging.slot_consumer.SlotConsumer`)
runs each command's work here. Work that raises is logged with its traceback, never lost
silently; whatever way it ends, its key leaves `running`, the `ended` hook runs, and only
then is its slot free again (the hook may prepare the slot for the next work, e.g. a warm child).
Slots are numbered (0..count-1) for work that owns per-slot resources (GPUs); free slots are
handed out lowest-first in the order they were freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

_log = logging.getLogger(__name__)


class Work(Protocol):
    """One piece of work: `run()` does it to the end (raising when it crashed)."""

    async def run(self) -> None: ...


K = TypeVar("K", bound=tuple[Hashable, ...])  # e.g. (id, attempt): the values fill the `crashed` message
W = TypeVar("W", bound=Work)
Ended = Callable[[K, W, int], Awaitable[None]]  # (key, work, slot): after the work, before its slot is free


class Slots(Generic[K, W]):
    """`count` slots; `running` maps each running work's key to the work and its task."""

    def __init__(
        self,
        count: int,
        *,
        crashed: str,
        log: logging.Logger = _log,
        ended: Ended[K, W] | None = None,
    ) -> None:
        """`crashed` is the log message (%-formatted with the key's values) for work that raised."""
        self._free = list(range(count))
        self._crashed, self._log, self._ended = crashed, log, ended
        self._freed = asyncio.Event()
        self.running: dict[K, tuple[W, asyncio.Task[None]]] = {}

    @property
    def free(self) -> int:
        """How many slots are free now."""
        return len(self._free)

    def reserve(self) -> int:
        """Take the next free slot (for work built around it); `start` it, or `unreserve` it on failure."""
        if not self._free:
            raise RuntimeError("no free slot")
        return self._free.pop(0)

    def unreserve(self, slot: int) -> None:
        """Give back a reserved slot whose work was never started; it is the next one handed out."""
        self._free.insert(0, slot)

    def start(self, key: K, work: W, slot: int | None = None, *, name: str) -> asyncio.Task[None]:
        """Run `work` in `slot` (default: the next free one) as the task `name`."""
        if slot is None:
            slot = self.reserve()
        task = asyncio.create_task(self._supervise(key, work, slot), name=name)
        self.running[key] = (work, task)
        return task

    async def wait_freed(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for a slot to be freed (after this call began)."""
        self._freed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._freed.wait(), timeout)

    async def _supervise(self, key: K, work: W, slot: int) -> None:
        try:
            await work.run()
        except Exception:  # the work's own recovery (a lease, a watchdog) takes over; log why
            self._log.exception(self._crashed, *key)
        finally:
            self.running.pop(key, None)
            try:
                if self._ended is not None:
                    await self._ended(key, work, slot)
            except Exception:  # the slot is freed all the same: a failed clean-up must not shrink the pool
                self._log.exception("cleaning up after %r failed", key)
            finally:
                self._free.append(slot)
                self._freed.set()
