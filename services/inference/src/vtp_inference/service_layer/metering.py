"""The replica's meter: `record` per request (memory only), `flush` every few seconds (one batch).

A flush turns the cells aggregated since the last one into a batch numbered (replica_id, seq)
and hands it to the store, which applies it once. A batch that fails stays pending and is
retried as it is (same number) before anything newer, so a write whose acknowledgement was lost
is never applied twice; requests meanwhile keep aggregating into the next batch. A replica
killed outright loses only what it aggregated since its last successful flush; a restarted one
has a new replica id and starts from nothing, so it cannot count anything twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from vtp_inference.domain.usage import Aggregator, Batch, Cell, CellKey, Granularity, truncate
from vtp_runtime.metrics import METRICS

_log = logging.getLogger(__name__)
ONE_MINUTE = timedelta(minutes=1)


class UsageStore(Protocol):
    async def apply(self, batch: Batch) -> bool: ...

    async def read(
        self,
        project_id: uuid.UUID,
        granularity: Granularity,
        start: datetime,
        end: datetime,
        deployment_id: uuid.UUID | None = None,
        key_id: uuid.UUID | None = None,
    ) -> list[tuple[CellKey, Cell]]: ...

    async def prune(self, minutes_older_than: timedelta, flushes_older_than: timedelta) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


class Meter:
    def __init__(
        self,
        store: UsageStore,
        *,
        enabled: bool = True,
        replica_id: uuid.UUID | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store, self.enabled = store, enabled
        self.replica_id = replica_id or uuid.uuid4()  # new per process: a restart never reuses a number
        self._clock = clock
        self._cells = Aggregator()
        self._seq = 0
        self._pending: Batch | None = None
        self._lock = asyncio.Lock()
        self._minute = (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))  # [start, end)

    def record(
        self,
        project_id: uuid.UUID,
        deployment_id: uuid.UUID,
        key_id: uuid.UUID | None,
        *,
        images: int,
        latency_ms: float,
        compute_seconds: float = 0.0,
        bytes_in: int = 0,
        error: str | None = None,
    ) -> None:
        """Count one answered request (`error`: its problem code). Memory only; never raises."""
        if not self.enabled:
            return
        now = self._clock()
        if not self._minute[0] <= now < self._minute[1]:  # a new minute: truncating every time costs more
            start = truncate(now, Granularity.MINUTE)
            self._minute = (start, start + ONE_MINUTE)
        key = CellKey(self._minute[0], project_id, deployment_id, key_id)
        self._cells.record(
            key, images=images, latency_ms=latency_ms, compute_seconds=compute_seconds, bytes_in=bytes_in, error=error
        )

    async def flush(self) -> int:
        """Write what was aggregated (a pending batch first); the cells written. Raises if the store does."""
        async with self._lock:
            written = 0
            for _ in range(2):  # the pending batch, then the newer cells
                if self._pending is None:
                    cells = self._cells.drain()
                    if not cells:
                        break
                    self._seq += 1
                    self._pending = Batch(self.replica_id, self._seq, cells)
                batch = self._pending
                try:
                    applied = await self.store.apply(batch)
                except Exception:
                    METRICS.inc("vtp_inference_usage_flush_failures_total")
                    raise
                self._pending = None
                METRICS.inc("vtp_inference_usage_flushes_total")
                METRICS.inc("vtp_inference_usage_cells_flushed_total", len(batch.cells))
                if not applied:
                    _log.info("usage batch %s/%d had been applied already", batch.replica_id, batch.seq)
                written += len(batch.cells)
            return written

    async def final_flush(self) -> None:
        """On graceful shutdown: flush what is left (logged, not raised, if the store is down)."""
        try:
            await self.flush()
        except Exception:
            _log.exception("final usage flush failed: the last interval's usage is lost")

    def unflushed(self) -> int:
        """Cells aggregated or pending, not yet written."""
        return len(self._cells) + (len(self._pending.cells) if self._pending else 0)
