"""Dynamic batching in the process: concurrent single-image inferences of one model run as one batch.

A batch starts when it holds `max_batch` images, or `max_delay` after its first image arrived,
and one batch runs at a time per model (images that arrive meanwhile form the next one). An
accelerator runs a batch of 8 in little more than the time of one; a CPU does not (see
`bench/micro_batching.py`), which is why the batcher is off by default there. A failing batch
fails each of its callers with the same error; a caller cancelled before its batch starts is
left out of it, one cancelled later gets nothing and the others their results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

Run = Callable[[np.ndarray], np.ndarray]


class MicroBatcher:
    def __init__(self, run: Run, max_batch: int, max_delay: float, executor: Executor | None = None) -> None:
        self._run, self._max_batch, self._max_delay, self._executor = run, max_batch, max_delay, executor
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._due = self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches: list[int] = []  # sizes of the batches run (tests, bench)

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's output for `x` ([n, ...], n rows), computed in a batch with other callers'."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((x, future))
        if self._rows() >= self._max_batch:
            self._flush()
        elif self._timer is None and not self._due:
            self._timer = loop.call_later(self._max_delay, self._flush)
        return await future  # cancelling the caller cancels the future: _start skips it

    def _rows(self) -> int:
        return sum(len(x) for x, f in self._pending if not f.done())

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = True
        self._start()

    def _start(self) -> None:
        if self._busy or not self._due:
            return
        self._pending = [(x, f) for x, f in self._pending if not f.done()]
        batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0][0]) <= self._max_batch):
            item = self._pending.pop(0)
            batch.append(item)
            rows += len(item[0])
        self._due = bool(self._pending) and self._rows() >= self._max_batch
        if not batch:
            return
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._execute(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        loop = asyncio.get_running_loop()
        self.batches.append(sum(len(x) for x, _ in batch))
        try:
            inputs = batch[0][0] if len(batch) == 1 else np.concatenate([x for x, _ in batch])
            output = await loop.run_in_executor(self._executor, self._run, inputs)
            if len(output) != len(inputs):
                raise ValueError(f"the model answered {len(output)} rows for a batch of {len(inputs)}")
        except Exception as exc:  # every caller of the batch gets the model's own error
            for _, future in batch:
                _settle(future, exc)
        else:
            offset = 0
            for x, future in batch:
                _settle(future, output[offset : offset + len(x)])
                offset += len(x)
        finally:
            self._busy = False
            if self._pending:  # they waited for this batch: start theirs now
                self._flush()


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # cancelled meanwhile
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class BatchedModel:
    """A model whose calls (from the predict and OIP worker threads) go through a micro-batcher.

    Batches form from calls that run at once, so `VTP_INFERENCE_WORKERS` should be at least the
    batch size; the batches themselves run on the batcher's executor, never on a worker thread.
    """

    def __init__(self, model: Any, batcher: MicroBatcher, loop: asyncio.AbstractEventLoop) -> None:
        self.model, self.batcher, self._loop = model, batcher, loop
        self.platform, self.input_name, self.output_name = model.platform, model.input_name, model.output_name
        self.input_shape: list[Any] = list(model.input_shape)
        self.output_shape: list[Any] = list(model.output_shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return asyncio.run_coroutine_threadsafe(self.batcher(x), self._loop).result()

    def __getattr__(self, name: str) -> Any:  # anything else (e.g. every output of a segment model): unbatched
        return getattr(self.model, name)


def batching(mode: str, max_batch: int, max_delay: float, executor: Executor) -> Callable[[Any], Any]:
    """The model cache's wrapper: `on`, or `auto` for accelerated models; only models with a free batch size."""

    def wrap(model: Any) -> Any:
        dynamic = not isinstance(model.input_shape[0], int) or model.input_shape[0] < 1
        wanted = mode == "on" or (mode == "auto" and bool(getattr(model, "accelerated", False)))
        if not (wanted and dynamic and max_batch > 1):
            return model
        return BatchedModel(model, MicroBatcher(model, max_batch, max_delay, executor), asyncio.get_running_loop())

    return wrap
