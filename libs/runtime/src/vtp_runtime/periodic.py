"""A background task that runs one job every N seconds until the service stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from vtp_runtime.http.app import BackgroundTask

_log = logging.getLogger(__name__)


def periodic(
    what: str, every: float, job: Callable[[], Awaitable[object]], *, first_after: float = 0.0
) -> BackgroundTask:
    """Run `job` `first_after` seconds after start-up, then every `every` seconds.

    A round that raises is logged and the next round retries, so one bad round (a
    database blip) never ends the task.
    """

    async def run(stop: asyncio.Event) -> None:
        delay = first_after
        while not await _stopped_within(stop, delay):
            try:
                await job()
            except Exception:  # the next round retries
                _log.exception("%s failed", what)
            delay = every

    return run


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
