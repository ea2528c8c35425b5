"""Cancellations every runner hears, remembered for a bounded time.

Every runner must see every cancellation (the holder of a job stops it, the others never
start it), so each reads all partitions of `job.cancel-requested.v1` without a consumer
group: nothing is left behind on the broker when a runner goes away, and a restart reads
the topic from its start again (it is small). Only cancellations younger than
`memory_seconds` are kept: an older one can only concern a command that no longer waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaError

from vtp_contracts.catalog import JOB_CANCEL_REQUESTED
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event
from vtp_runtime.messaging.consuming import sleep_unless_stopped, start_retrying
from vtp_runtime.messaging.dead_letter import Record
from vtp_runtime.supervision import report_failure, report_ok

_log = logging.getLogger(__name__)
AttemptKey = tuple[str, int]  # (job id, attempt)


class Cancellations:
    """Cancelled attempts, each forgotten `memory_seconds` after it was requested (and at most `limit`)."""

    def __init__(self, memory_seconds: float, limit: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._memory, self._limit, self._clock = memory_seconds, limit, clock
        self._at: OrderedDict[AttemptKey, float] = OrderedDict()  # roughly oldest first

    def add(self, key: AttemptKey, requested_at: float) -> bool:
        """Remember `key`; False (and forgotten) if it is already older than the memory."""
        self._expire()
        if requested_at < self._clock() - self._memory:
            return False
        self._at[key] = max(requested_at, self._at.pop(key, requested_at))
        while len(self._at) > self._limit:
            self._at.popitem(last=False)
        return True

    def remembers(self, key: AttemptKey) -> bool:
        at = self._at.get(key)
        return at is not None and at >= self._clock() - self._memory

    def __len__(self) -> int:
        self._expire()
        return len(self._at)

    def _expire(self) -> None:
        horizon = self._clock() - self._memory
        while self._at and next(iter(self._at.values())) < horizon:
            self._at.popitem(last=False)


def cancellation_of(record: Record, timestamp_ms: int | None) -> tuple[AttemptKey, float] | None:
    """The attempt a cancel record names and when it was requested; None for a malformed record."""
    try:
        data = decode_event(JOB_CANCEL_REQUESTED, record.headers, record.value or b"").data
    except MalformedEvent as exc:  # every runner reads it: one warning each, no dead letter per runner
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        _log.warning("ignoring malformed cancellation %s: %s", where, exc)
        return None
    at = timestamp_ms / 1000 if timestamp_ms and timestamp_ms > 0 else time.time()
    return (str(data.job_id), data.attempt), at


async def read_cancellations(
    consumer: Any, stop: asyncio.Event, on_cancel: Callable[[AttemptKey, float], None], pause: float
) -> None:
    """Hand every cancellation `consumer` reads to `on_cancel` until `stop` is set."""
    try:
        await start_retrying(consumer, stop)
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:
                _log.warning("reading cancellations failed: %s", exc)
                report_failure(exc)
                await sleep_unless_stopped(pause, stop)
                continue
            for records in batches.values():
                for record in records:
                    if (found := cancellation_of(record, record.timestamp)) is not None:
                        on_cancel(*found)
            report_ok()
    finally:
        await consumer.stop()
