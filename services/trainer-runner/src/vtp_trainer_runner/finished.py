"""Attempts this runner has finished, remembered for a bounded time and count.

A command can reach a runner again after its attempt ended: an offset commit that fails in a
rebalance leaves the committed offset before it, and the partition's next reader gets it once
more. The runner skips an attempt it remembers here. The memory is per process: another runner
that reads the command cannot know, and the jobs service's attempt fencing is what keeps such a
second run's events from changing the finished job.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from vtp_trainer_runner.cancellations import AttemptKey

UNREPORTED = "unreported"  # announced `started`, ended without a terminal event (the watchdog requeues it)


class FinishedAttempts:
    """Finished attempts and their outcome, each forgotten `memory_seconds` after it ended (at most `limit`)."""

    def __init__(self, memory_seconds: float, limit: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._memory, self._limit, self._clock = memory_seconds, limit, clock
        self._ended: OrderedDict[AttemptKey, tuple[str, float]] = OrderedDict()  # oldest first

    def add(self, key: AttemptKey, outcome: str) -> None:
        """Remember that `key` ended now with `outcome`; the oldest go first beyond `limit`."""
        self._ended.pop(key, None)  # re-added at the end: the order stays the order of ending
        self._ended[key] = (outcome, self._clock())
        self._expire()
        while len(self._ended) > self._limit:
            self._ended.popitem(last=False)

    def outcome(self, key: AttemptKey) -> str | None:
        """How `key` ended, while it is remembered; None otherwise."""
        self._expire()
        found = self._ended.get(key)
        return found[0] if found is not None else None

    def __len__(self) -> int:
        self._expire()
        return len(self._ended)

    def _expire(self) -> None:
        horizon = self._clock() - self._memory
        while self._ended and next(iter(self._ended.values()))[1] < horizon:
            self._ended.popitem(last=False)
