"""The core scheduler: every core to a job alone, one each under concurrency, never more than the cores."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_inference_model_cache import tiny_detector

from vtp_inference.adapters.granted_cores import granted, run_granted
from vtp_inference.adapters.onnx_runtime import OnnxModel
from vtp_inference.service_layer.cores import CoreScheduler


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_job_alone_gets_every_core_and_gives_them_back() -> None:
    cores = CoreScheduler(4)
    assert await cores.acquire() == 4
    cores.release(4)
    assert cores.free == 4
    assert await cores.acquire() == 4


async def test_overlapping_jobs_get_one_core_each_until_calm() -> None:
    clock = Clock()
    cores = CoreScheduler(2, calm_seconds=1.0, clock=clock)
    first = await cores.acquire()
    assert first == 2
    second = asyncio.ensure_future(cores.acquire())  # waits: the first holds every core
    await asyncio.sleep(0)
    assert not second.done()
    cores.release(first)
    assert await second == 1  # overlap seen: one core, so that the next one runs beside it
    assert await cores.acquire() == 1
    assert cores.free == 0
    cores.release(1)
    cores.release(1)
    assert await cores.acquire() == 1  # still within the calm period after the overlap
    cores.release(1)
    clock.now += 1.5
    assert await cores.acquire() == 2  # calm again: a job alone gets every core


async def test_grants_never_exceed_the_cores_and_keep_arrival_order() -> None:
    cores = CoreScheduler(3)
    held = [await cores.acquire()]  # 3
    waiting = [asyncio.ensure_future(cores.acquire()) for _ in range(5)]
    await asyncio.sleep(0)
    cores.release(held.pop())
    await asyncio.sleep(0)
    done = [w for w in waiting if w.done()]
    assert waiting[:3] == done and [w.result() for w in done] == [1, 1, 1]
    assert cores.free == 0
    cores.release(1)
    await asyncio.sleep(0)
    assert waiting[3].done() and not waiting[4].done()


async def test_a_whole_job_waits_for_every_core_and_nobody_overtakes_it() -> None:
    cores = CoreScheduler(2)
    cores_clock_overlap = [await cores.acquire()]  # 2 (alone)
    whole = asyncio.ensure_future(cores.acquire(whole=True))
    later = asyncio.ensure_future(cores.acquire())
    await asyncio.sleep(0)
    cores.release(cores_clock_overlap.pop())
    await asyncio.sleep(0)
    assert whole.result() == 2 and not later.done()
    cores.release(2)
    assert await later == 1  # overlap was seen: narrow


async def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_run() -> None:
    cores = CoreScheduler(3)
    first = await cores.acquire()  # 3, alone
    narrow = asyncio.ensure_future(cores.acquire())
    await asyncio.sleep(0)
    cores.release(first)
    assert await narrow == 1  # overlap: 2 cores left free
    whole = asyncio.ensure_future(cores.acquire(whole=True))  # needs all 3: waits
    behind = asyncio.ensure_future(cores.acquire())  # could run, but does not overtake the head
    await asyncio.sleep(0)
    assert not whole.done() and not behind.done()
    whole.cancel()
    with pytest.raises(asyncio.CancelledError):
        await whole
    assert await behind == 1  # the head left: the next one runs
    assert cores.free == 1


async def test_fixed_threading_is_one_slot_per_job() -> None:
    cores = CoreScheduler(2, adaptive=False)
    assert [await cores.acquire(), await cores.acquire(whole=True)] == [1, 1]
    blocked = asyncio.ensure_future(cores.acquire())
    await asyncio.sleep(0)
    assert not blocked.done()
    cores.release(1)
    assert await blocked == 1


def test_an_adaptive_model_runs_on_its_one_thread_session_when_granted_one_core() -> None:
    import contextvars

    data = tiny_detector()
    model = OnnxModel(data, threads=2, adaptive=True)
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    assert model.adaptive and model.sessions == 2
    wide = model(x)
    assert model._narrow is None  # built on first use only
    narrow = contextvars.copy_context().run(run_granted, 1, model, x)
    assert model._narrow is not None and model._narrow.get_session_options().intra_op_num_threads == 1
    assert np.array_equal(wide, narrow)
    assert granted() is None  # the grant stayed in the job's own context
    fixed = OnnxModel(data, threads=2)
    assert not fixed.adaptive and fixed.sessions == 1
    assert not OnnxModel(data, threads=1, adaptive=True).adaptive  # one thread already
