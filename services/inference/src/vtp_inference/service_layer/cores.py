"""Which cores each inference job of a replica gets: all of them alone, one each under concurrency.

On a CPU, one image's inference spread over every core (ONNX Runtime's intra-op threads) answers
soonest, but several images each on one core get more done: threads that split one operator wait
at its barrier for the slowest of them, and any other work on the machine makes one of them slow.
On 2 cores, yolo11n at 640 px: one two-thread run at a time 21.5 images/s, two one-thread runs at
once 24.5, two two-thread runs at once 19 (oversubscribed). So (`adaptive`):

- a job alone, with no overlap in the last `calm_seconds`, gets every core (the wide grant);
- once jobs overlap, each gets one core, until `calm_seconds` pass without overlap, so that a steady
  concurrent load does not flip back to wide grants between two requests;
- a job that needs every core (a runtime that cannot use fewer) waits for all of them.

Grants never add up to more than `cores`, jobs are granted in arrival order, and no job waits while
it could run. `adaptive=False` (VTP_INFERENCE_THREADING=fixed): `cores` slots of one job each.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

Waiter = tuple[asyncio.Future[int], bool]  # the grant to come, whether it needs every core


class CoreScheduler:
    def __init__(
        self, cores: int, adaptive: bool = True, calm_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cores, self.adaptive = max(1, cores), adaptive
        self._free = self.cores
        self._calm, self._clock = calm_seconds, clock
        self._overlap_until = float("-inf")
        self._waiting: deque[Waiter] = deque()

    @property
    def free(self) -> int:
        return self._free

    async def acquire(self, whole: bool = False) -> int:
        """The cores granted to one job (give them back with `release`); `whole`: it needs every core."""
        if not self._waiting:
            grant = self._grant(whole, alone=True)
            if grant:
                return grant
        self._overlapped()
        waiter: Waiter = (asyncio.get_running_loop().create_future(), whole)
        self._waiting.append(waiter)
        try:
            return await waiter[0]
        except asyncio.CancelledError:
            if waiter[0].done() and not waiter[0].cancelled():
                self.release(waiter[0].result())  # granted as the caller was cancelled
            elif waiter in self._waiting:
                self._waiting.remove(waiter)
                self._wake()  # a `whole` job at the head may have held the others back
            raise

    def release(self, cores: int) -> None:
        self._free += cores
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            future, whole = self._waiting[0]
            if future.done():  # cancelled while waiting
                self._waiting.popleft()
                continue
            grant = self._grant(whole, alone=len(self._waiting) == 1)
            if not grant:
                return  # in arrival order: no job overtakes the head (a `whole` one would starve)
            self._waiting.popleft()
            future.set_result(grant)

    def _grant(self, whole: bool, alone: bool) -> int:
        """Take a grant for a job if one is free now; 0: it waits."""
        if not self.adaptive or (not whole and self._free < self.cores):
            grant = 1 if self._free >= 1 else 0
        elif whole:
            grant = self.cores if self._free == self.cores else 0
        else:  # every core free
            grant = self.cores if alone and self._clock() >= self._overlap_until else 1
        if self.adaptive and grant and (self._free < self.cores or not alone):
            self._overlapped()
        self._free -= grant
        return grant

    def _overlapped(self) -> None:
        self._overlap_until = self._clock() + self._calm
