"""periodic(): runs its job on schedule, survives a failing round, stops when asked."""

from __future__ import annotations

import asyncio

from vtp_runtime.periodic import periodic


async def test_rounds_continue_after_a_failure_and_stop_promptly() -> None:
    rounds: list[int] = []

    async def job() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("a bad round")

    stop = asyncio.Event()
    task = asyncio.create_task(periodic("test job", 0.01, job).run(stop))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert len(rounds) >= 3  # the first round raised, later ones still ran


async def test_first_round_can_wait_one_interval() -> None:
    rounds: list[int] = []

    async def job() -> None:
        rounds.append(1)

    stop = asyncio.Event()
    task = asyncio.create_task(periodic("test job", 10, job, first_after=10).run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert rounds == []
