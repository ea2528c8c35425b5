"""Helpers of take loops over a raw aiokafka consumer: start with retries, pause unless stopping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka.errors import KafkaError

from vtp_runtime.supervision import report_failure

_log = logging.getLogger(__name__)


async def sleep_unless_stopped(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def start_retrying(consumer: Any, stop: asyncio.Event) -> None:
    """Start an aiokafka consumer, retrying (and reporting to the supervisor) while Kafka is away."""
    delay = 0.5
    while True:
        try:
            await consumer.start()
            return
        except KafkaError as exc:
            if stop.is_set():
                raise
            _log.warning("Kafka not reachable (%s); retrying", exc)
            report_failure(exc)
            await sleep_unless_stopped(delay, stop)
            delay = min(delay * 2, 5)
