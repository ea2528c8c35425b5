"""Pre-warmed trainer children: one spare per free slot, so a job skips the framework's imports.

A spare is started with its slot's GPUs (CUDA_VISIBLE_DEVICES cannot change after torch is imported)
and preloads the plugins while it waits. The slot's next attempt takes it; when the attempt ends a
new spare is started. A spare that dies while waiting is replaced after a pause that grows while
spares keep dying. Spares hold no job, so closing the pool simply kills them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from vtp_trainer_runner.supervisor import JobProcess

_log = logging.getLogger(__name__)
Spawn = Callable[[Path, list[int]], Awaitable[JobProcess]]


async def _spawn_spare(scratch: Path, gpus: list[int]) -> JobProcess:
    return await JobProcess.spare(scratch, gpus=gpus)


class SparePool:
    """The runner's spares, by slot index; every method keeps at most one spare per free slot."""

    def __init__(self, root: Path, slots: Sequence[list[int]], spawn: Spawn = _spawn_spare) -> None:
        self._root, self._slots, self._spawn_child = root, list(slots), spawn
        self._spares: dict[int, JobProcess] = {}
        self._busy: set[int] = set()
        self._deaths: dict[int, int] = {}  # spares that died waiting, in a row, per slot
        self._locks = [asyncio.Lock() for _ in self._slots]
        self._watchers: dict[int, asyncio.Task[None]] = {}  # per waiting spare: replace it if it dies
        self._closed = False

    async def start(self) -> None:
        """A spare for every slot."""
        for slot in range(len(self._slots)):
            async with self._locks[slot]:
                await self._fill(slot)

    async def take(self, slot: int) -> JobProcess | None:
        """The slot's spare for an attempt; one started now (it warms up while the attempt prepares) if none."""
        async with self._locks[slot]:
            self._busy.add(slot)
            spare = self._spares.pop(slot, None)
            if spare is not None:
                self._watchers.pop(slot).cancel()
                if spare.returncode is None:
                    self._deaths.pop(slot, None)
                    return spare
                await spare.close()
            return await self._new(slot)

    async def release(self, slot: int, unused: JobProcess | None) -> None:
        """The attempt on `slot` ended: keep its spare if it never got the job, else start a new one."""
        async with self._locks[slot]:
            self._busy.discard(slot)
            if unused is not None and unused.returncode is None and not self._closed:
                self._keep(slot, unused)
            else:
                if unused is not None:
                    await unused.close()
                await self._fill(slot)

    async def close(self) -> None:
        """Kill the waiting spares; no new ones are started after this."""
        self._closed = True
        for slot, lock in enumerate(self._locks):
            async with lock:  # after any spawn in flight
                if (watcher := self._watchers.pop(slot, None)) is not None:
                    watcher.cancel()
                if (spare := self._spares.pop(slot, None)) is not None:
                    await spare.close()

    async def _fill(self, slot: int) -> None:
        if slot not in self._busy and slot not in self._spares and (spare := await self._new(slot)) is not None:
            self._keep(slot, spare)

    async def _new(self, slot: int) -> JobProcess | None:
        if self._closed:
            return None
        try:
            return await self._spawn_child(self._root / f"slot-{slot}", self._slots[slot])
        except OSError as exc:  # attempts then start their children cold
            _log.error("cannot start a spare trainer child for slot %d: %s", slot, exc)
            return None

    def _keep(self, slot: int, spare: JobProcess) -> None:
        self._spares[slot] = spare
        self._watchers[slot] = asyncio.create_task(self._replace_when_dead(slot, spare), name=f"spare-{slot}")

    async def _replace_when_dead(self, slot: int, spare: JobProcess) -> None:
        code = await spare.wait()
        deaths = self._deaths[slot] = self._deaths.get(slot, 0) + 1
        delay = min(2.0**deaths, 60.0)
        _log.warning("spare trainer child for slot %d exited with %s; replacing it in %.0f s", slot, code, delay)
        async with self._locks[slot]:
            if self._spares.get(slot) is not spare:
                return  # taken meanwhile: the attempt found it dead and coped
            del self._spares[slot]
            await spare.close()
        await asyncio.sleep(delay)
        async with self._locks[slot]:
            await self._fill(slot)

    @property
    def spares(self) -> dict[int, JobProcess]:
        """The waiting spares by slot (read-only use)."""
        return dict(self._spares)
