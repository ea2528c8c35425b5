"""A background task that runs one job every N seconds until the service stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from vtp_runtime.supervision import Background, report_failure, report_ok

_log = logging.getLogger(__name__)


def periodic(
    what: str, every: float, job: Callable[[], Awaitable[object]], *, first_after: float = 0.0
) -> Background:
    """Run `job` `first_after` seconds after start-up, then every `every` seconds.

    A round that raises is logged with its traceback and the next round retries, so one
    bad round (a database blip) never ends the task; each failed round is reported to the
    supervisor, so rounds that keep failing turn the service's health to 503 naming `what`.
    """

    async def run(stop: asyncio.Event) -> None:
        delay = first_after
        while not await _stopped_within(stop, delay):
            try:
                await job()
            except Exception as exc:  # the next round retries
                _log.exception("%s failed", what)
                report_failure(exc)
            else:
                report_ok()
            delay = every

    return Background(what, run)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
