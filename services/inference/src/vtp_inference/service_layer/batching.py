"""Dynamic batching in the process: concurrent single-image inferences of one model run as one batch.

A batch starts when it holds `max_batch` images, or `max_delay` after its first image arrived,
and one batch runs at a time per model (images that arrive meanwhile form the next one). An
accelerator runs a batch of 8 in little more than the time of one; a CPU does not (see
`bench/micro_batching.py`), which is why the batcher is off by default there. A failing batch
fails each of its callers with the same error; a caller cancelled before its batch starts is
left out of it, one cancelled later gets nothing and the others their results.

Each call keeps the trace context of its request. A batch runs as a span of its own (`inference
batch`): a child of its first traced caller's span, with an OpenTelemetry span link to each other
caller's (:func:`vtp_runtime.telemetry.linked_span`); that span is current while the runtime runs,
so the `triton` runtime's infer carries its `traceparent`. Each request's own spans and log lines
stay its own (its `inference` stage spans the wait for the batch).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import numpy as np

from vtp_runtime.telemetry import linked_span
from vtp_runtime.tracing import CURRENT, TraceContext, adopted

Run = Callable[[np.ndarray], np.ndarray]
Waiting = tuple[np.ndarray, asyncio.Future[np.ndarray], TraceContext | None]  # rows, answer, caller's trace


class MicroBatcher:
    def __init__(self, run: Run, max_batch: int, max_delay: float, executor: Executor | None = None) -> None:
        self._run, self._max_batch, self._max_delay, self._executor = run, max_batch, max_delay, executor
        self._pending: list[Waiting] = []
        self._timer: asyncio.TimerHandle | None = None
        self._due = self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches: list[int] = []  # sizes of the batches run (tests, bench)

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's output for `x` ([n, ...], n rows), computed in a batch with other callers'."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((x, future, CURRENT.get()))
        if self._rows() >= self._max_batch:
            self._flush()
        elif self._timer is None and not self._due:
            self._timer = loop.call_later(self._max_delay, self._flush)
        return await future  # cancelling the caller cancels the future: _start skips it

    def _rows(self) -> int:
        return sum(len(x) for x, f, _ in self._pending if not f.done())

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = True
        self._start()

    def _start(self) -> None:
        if self._busy or not self._due:
            return
        self._pending = [w for w in self._pending if not w[1].done()]
        batch: list[Waiting] = []
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

    async def _execute(self, batch: list[Waiting]) -> None:
        loop = asyncio.get_running_loop()
        self.batches.append(sum(len(x) for x, _, _ in batch))
        try:
            inputs = batch[0][0] if len(batch) == 1 else np.concatenate([x for x, _, _ in batch])
            with _batch_span([trace for _, _, trace in batch]):
                context = contextvars.copy_context()  # the executor's thread runs in the batch's span
                output = await loop.run_in_executor(self._executor, context.run, self._run, inputs)
            if len(output) != len(inputs):
                raise ValueError(f"the model answered {len(output)} rows for a batch of {len(inputs)}")
        except Exception as exc:  # every caller of the batch gets the model's own error
            for _, future, _ in batch:
                _settle(future, exc)
        else:
            offset = 0
            for x, future, _ in batch:
                _settle(future, output[offset : offset + len(x)])
                offset += len(x)
        finally:
            self._busy = False
            if self._pending:  # they waited for this batch: start theirs now
                self._flush()


@contextmanager
def _batch_span(traces: list[TraceContext | None]) -> Iterator[None]:
    """The batch's span current while it runs: a child of the first traced caller, linked to the others.

    None without a traced caller (set all the same: this task may hold some caller's context)."""
    distinct = list(dict.fromkeys(t for t in traces if t is not None))  # a request's several images: one link
    span: AbstractContextManager[TraceContext | None] = (
        linked_span("inference batch", distinct[0], distinct[1:]) if distinct else nullcontext()
    )
    with span as context, adopted(context):
        yield


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
        # The batcher's call runs in a copy of this thread's context (the request's trace).
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
