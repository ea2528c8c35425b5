"""The micro-batcher with a fake runtime: batches, the delay bound, errors to every caller, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from vtp_inference.service_layer.batching import BatchedModel, MicroBatcher, batching


class FakeRuntime:
    """Doubles its input; records the batch sizes it saw; can fail or block on demand."""

    platform, input_name, output_name = "fake", "images", "output0"
    input_shape: list[Any] = ["batch", 3, 4, 4]
    output_shape: list[Any] = ["batch", 3, 4, 4]

    def __init__(self, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.seen: list[int] = []
        self.fail, self.gate = fail, gate

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.seen.append(len(x))
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise RuntimeError("the device fell over")
        return x * 2

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        return [x * 3]


def _image(value: float) -> np.ndarray:
    return np.full((1, 3, 4, 4), value, np.float32)


async def test_concurrent_calls_run_as_one_batch_with_each_callers_rows():
    model = FakeRuntime()
    batcher = MicroBatcher(model, max_batch=8, max_delay=5.0)
    results = await asyncio.gather(*(batcher(_image(i)) for i in range(8)))
    assert model.seen == [8]  # full: ran at once, without waiting the 5 s delay
    for i, out in enumerate(results):
        assert out.shape == (1, 3, 4, 4) and float(out.max()) == 2 * i


async def test_a_lone_call_waits_at_most_the_delay_and_larger_loads_split_at_max_batch():
    model = FakeRuntime()
    batcher = MicroBatcher(model, max_batch=4, max_delay=0.05)
    started = time.perf_counter()
    await batcher(_image(1))
    waited = time.perf_counter() - started
    assert model.seen == [1] and waited >= 0.05
    await asyncio.gather(*(batcher(_image(i)) for i in range(10)))
    assert model.seen[1:] == [4, 4, 2] and max(model.seen) <= 4


async def test_calls_arriving_while_a_batch_runs_form_the_next_batch():
    gate = threading.Event()
    model = FakeRuntime(gate=gate)
    executor = ThreadPoolExecutor(1)
    batcher = MicroBatcher(model, max_batch=8, max_delay=0.0, executor=executor)
    first = asyncio.ensure_future(batcher(_image(0)))
    await asyncio.sleep(0.05)  # the first batch (one image) is running, blocked on the gate
    rest = [asyncio.ensure_future(batcher(_image(i))) for i in range(1, 6)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, *rest)
    assert model.seen == [1, 5]
    executor.shutdown()


async def test_a_failing_batch_fails_each_of_its_callers_with_the_error():
    batcher = MicroBatcher(FakeRuntime(fail=True), max_batch=3, max_delay=1.0)
    outcomes = await asyncio.gather(*(batcher(_image(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "fell over" in str(o) for o in outcomes)
    ok = MicroBatcher(FakeRuntime(), max_batch=1, max_delay=0.0)  # and a batcher keeps working after errors
    assert float((await ok(_image(3))).max()) == 6


async def test_a_wrong_number_of_output_rows_is_an_error_for_every_caller():
    batcher = MicroBatcher(lambda x: x[:1], max_batch=2, max_delay=1.0)
    outcomes = await asyncio.gather(batcher(_image(1)), batcher(_image(2)), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)


async def test_a_caller_cancelled_before_its_batch_is_left_out_and_others_are_served():
    model = FakeRuntime()
    batcher = MicroBatcher(model, max_batch=8, max_delay=0.1)
    gone = asyncio.ensure_future(batcher(_image(9)))
    kept = [asyncio.ensure_future(batcher(_image(i))) for i in range(3)]
    await asyncio.sleep(0)
    gone.cancel()
    results = await asyncio.gather(*kept)
    assert model.seen == [3] and [float(r.max()) for r in results] == [0, 2, 4]
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_caller_cancelled_while_its_batch_runs_does_not_disturb_the_others():
    gate = threading.Event()
    executor = ThreadPoolExecutor(1)
    batcher = MicroBatcher(FakeRuntime(gate=gate), max_batch=2, max_delay=1.0, executor=executor)
    gone, kept = asyncio.ensure_future(batcher(_image(1))), asyncio.ensure_future(batcher(_image(2)))
    await asyncio.sleep(0.05)
    gone.cancel()
    gate.set()
    assert float((await kept).max()) == 4
    assert gone.cancelled()
    executor.shutdown()


async def test_worker_threads_batch_through_the_wrapper_and_the_modes_choose_models():
    model = FakeRuntime()
    executor = ThreadPoolExecutor(1)
    wrapped = batching("on", 4, 0.05, executor)(model)
    assert isinstance(wrapped, BatchedModel) and wrapped.input_shape == model.input_shape
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(4) as workers:  # the predict path calls models from its worker threads
        outs = await asyncio.gather(*(loop.run_in_executor(workers, wrapped, _image(i)) for i in range(4)))
    assert model.seen == [4] and [float(o.max()) for o in outs] == [0, 2, 4, 6]
    assert float(wrapped.run_all(_image(1))[0].max()) == 3  # other entry points: the model's own, unbatched
    assert batching("auto", 4, 0.05, executor)(model) is model  # auto: only accelerated models
    model.accelerated = True  # type: ignore[attr-defined]
    assert isinstance(batching("auto", 4, 0.05, executor)(model), BatchedModel)
    fixed = FakeRuntime()
    fixed.input_shape = [1, 3, 4, 4]  # a fixed batch of one cannot batch
    assert batching("on", 4, 0.05, executor)(fixed) is fixed
    executor.shutdown()
