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
from collections.abc import AsyncIterator, Callable, Iterator
from typing import BinaryIO, cast

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.domain.model import LayoutNotPossible, TaskNotInDataset, TaskRequired
from vtp_datasets.service_layer.content import Content
from vtp_dice.convert import OpenBlob, Plan, coco_plan, imagefolder_plan, iter_dice_zip, stream_plan, yolo_plan
from vtp_dice.format import Split, Task

QUEUE_CHUNKS = 8
_DONE = object()


async def stream_snapshot(
    blobs: BlobStore, content: Content, splits: dict[str, str], fmt: str, task: Task | None
) -> tuple[Task | None, AsyncIterator[bytes]]:
    """The task written (None for DICE) and the zip's chunks. The request is checked and the layout
    planned now, so every refusal is a 422 before a byte is sent."""
    if fmt == "dice":
        return None, _pump(blobs, lambda open_blob: iter_dice_zip(content.manifest, open_blob))
    chosen = download_task(content, fmt, task)
    try:  # planning walks every annotation: off the event loop
        plan = await asyncio.to_thread(_plan, content, splits, fmt, chosen)
    except ValueError as exc:  # e.g. pose classes with different keypoint counts, colliding folder names
        raise LayoutNotPossible(f"{fmt}/{chosen}: {exc}") from exc
    return chosen, _pump(blobs, lambda open_blob: stream_plan(plan, open_blob))


def download_task(content: Content, fmt: str, task: Task | None) -> Task:
    """The task a YOLO or COCO download writes: the one asked for, else the snapshot's only task
    the format can write; with several, the caller must choose (`TaskRequired` lists them)."""
    if task is not None:
        if task not in content.docs:
            held = ", ".join(sorted(content.docs)) or "none"
            raise TaskNotInDataset(f"{fmt} of {task}: the snapshot's tasks are {held}")
        if fmt == "coco" and task == "classification":
            raise TaskNotInDataset("COCO has no classification layout; use yolo (ImageFolder)")
        return task
    # COCO has no classification layout, so a snapshot with one other task has one COCO choice.
    writable = sorted(t for t in content.docs if not (fmt == "coco" and t == "classification"))
    if len(writable) == 1:
        return writable[0]
    if not writable:
        held = ", ".join(sorted(content.docs)) or "none"
        raise TaskNotInDataset(f"{fmt} cannot write any of the snapshot's tasks ({held})")
    raise TaskRequired(
        f"the snapshot has {len(writable)} tasks {fmt} can write ({', '.join(writable)}): choose one with task=",
        list(writable),
    )


def _plan(content: Content, splits: dict[str, str], fmt: str, task: Task) -> Plan:
    split_of = cast(dict[str, Split], splits)
    if task == "classification":  # Ultralytics' classification dataset is the ImageFolder layout
        return imagefolder_plan(content.manifest, content.docs, split_of)
    if fmt == "yolo":
        return yolo_plan(task, content.manifest, content.docs, split_of, None)
    return coco_plan(task, content.manifest, content.docs, split_of)


async def _pump(blobs: BlobStore, chunks: Callable[[OpenBlob], Iterator[bytes]]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_CHUNKS)

    def open_blob(sha256: str) -> BinaryIO:
        return io.BytesIO(asyncio.run_coroutine_threadsafe(blobs.get(sha256), loop).result())

    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks(open_blob):
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
