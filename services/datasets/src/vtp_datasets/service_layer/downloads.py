"""Snapshot downloads: a zip produced on the fly while it is sent.

The converters in `vtp_dice.convert` are synchronous generators; they run in a
worker thread and read blobs through the event loop, and their chunks come back
through a small bounded queue, so a slow client holds a few chunks in memory,
never the whole zip.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.domain.model import TaskNotInDataset
from vtp_datasets.service_layer.content import Content
from vtp_dice.convert import iter_coco_zip, iter_dice_zip, iter_yolo_zip
from vtp_dice.format import Task

QUEUE_CHUNKS = 8
_DONE = object()


def stream_snapshot(
    blobs: BlobStore, content: Content, splits: dict[str, str], fmt: str, task: Task | None
) -> AsyncIterator[bytes]:
    """Check the request now (so errors are proper responses), then stream."""
    if fmt != "dice":
        if task is None or task not in content.docs:
            raise TaskNotInDataset(f"{fmt} needs one of the snapshot's tasks: {sorted(content.docs)}")
        if fmt == "coco" and task == "classification":
            raise TaskNotInDataset("COCO has no classification layout; use yolo (ImageFolder)")
    return _pump(blobs, content, splits, fmt, task)


async def _pump(
    blobs: BlobStore, content: Content, splits: dict[str, str], fmt: str, task: Task | None
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_CHUNKS)

    def open_blob(sha256: str) -> BinaryIO:
        return io.BytesIO(asyncio.run_coroutine_threadsafe(blobs.get(sha256), loop).result())

    def chunks() -> Iterator[bytes]:
        if fmt == "dice":
            return iter_dice_zip(content.manifest, open_blob)
        assert task is not None
        convert = iter_yolo_zip if fmt == "yolo" else iter_coco_zip
        return convert(task, content.manifest, content.docs, splits, open_blob)  # type: ignore[arg-type]

    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks():
                if stop.is_set():  # the client went away
                    return
                if chunk:
                    asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
            asyncio.run_coroutine_threadsafe(queue.put(_DONE), loop).result()
        except BaseException as exc:  # hand the failure to the consumer
            asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()

    producer = loop.run_in_executor(None, produce)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()
        while not producer.done():  # unblock a producer waiting on a full queue
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            await asyncio.sleep(0.01)
