"""Image blobs staged while an upload is validated, by one writer thread behind the probe threads.

One writer, not every probe thread: the file system serialises creates in a directory anyway,
and concurrent writers mostly add kernel contention. The probe threads hand over bytes through
a queue bounded in bytes (so memory stays flat) and go back to decoding.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from vtp_dice.manifest import ImageEntry, blob_key
from vtp_runtime.storage import Staging

QUEUE_BYTES = 16 << 20


class StagedBlobs:
    """Image blobs written during validation, invisible until `publish` (where the store can stage)."""

    def __init__(self, staging: Staging, queue_bytes: int = QUEUE_BYTES) -> None:
        self._staging, self._limit = staging, queue_bytes
        self._queue: deque[tuple[ImageEntry, bytes]] = deque()
        self._queued = 0
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None

    def offer(self, entry: ImageEntry, data: bytes) -> None:
        """Queue a probed image for staging (called on probe threads; waits while the queue is full)."""
        with self._cond:
            if self._error is not None or self._closed:
                return  # publish() reports the error; after discard() nothing is wanted
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="stage-blobs", daemon=True)
                self._writer.start()
            # An image larger than the whole budget still goes through, alone.
            self._cond.wait_for(lambda: not self._queued or self._queued + len(data) <= self._limit)
            self._queue.append((entry, data))
            self._queued += len(data)
            self._cond.notify_all()

    def _write(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                entry, data = self._queue.popleft()
            try:
                if self._error is None:
                    self._staging.stage(blob_key(entry.sha256), data, "application/octet-stream", entry.sha256)
            except BaseException as exc:  # kept for publish(); later items are just drained
                self._error = exc
            with self._cond:
                self._queued = max(0, self._queued - len(data))
                self._cond.notify_all()

    def _drain(self, drop: bool = False) -> None:
        with self._cond:
            if drop:  # discarding: no point writing what is still queued
                self._queue.clear()
                self._queued = 0
            self._closed = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join()

    async def publish(self) -> set[str]:
        """Wait for the writer, then make the staged blobs visible; returns their keys."""
        await asyncio.to_thread(self._drain)
        if self._error is not None:
            raise self._error
        keys = set(self._staging.staged)
        await self._staging.publish()
        return keys

    async def discard(self) -> None:
        await asyncio.to_thread(self._drain, True)
        await self._staging.discard()
