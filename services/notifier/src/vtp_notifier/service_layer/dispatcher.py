"""The webhook dispatcher: claims due deliveries in batches, posts them, records the outcomes.

Each batch is claimed in one transaction, sent concurrently and recorded in one more, so a
replica does a handful of queries per batch, not per delivery. Several batches may be in
flight, so one slow receiver does not hold up everyone else's deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_notifier.adapters import delivery_queue as queue
from vtp_notifier.adapters.delivery_queue import Claimed, FailureRun, Outcome
from vtp_notifier.adapters.secret_box import SecretBox
from vtp_notifier.domain.signing import secret_key, webhook_headers
from vtp_notifier.domain.webhooks import AttemptResult, DeliveryStatus, retry_delay
from vtp_notifier.settings import WebhookSettings
from vtp_runtime.supervision import report_failure, report_ok

_log = logging.getLogger(__name__)


class Sender(Protocol):
    async def post(self, url: str, body: str, headers: dict[str, str]) -> AttemptResult: ...


@dataclass(frozen=True)
class DispatchPolicy:
    schedule: tuple[float, ...]
    jitter: float
    timeout: float
    disable_after: int
    concurrency: int
    poll_seconds: float
    idle_poll_seconds: float = 30.0

    @staticmethod
    def from_settings(s: WebhookSettings) -> DispatchPolicy:
        return DispatchPolicy(
            tuple(s.webhook_retry_schedule_seconds),
            s.webhook_retry_jitter,
            s.webhook_timeout_seconds,
            s.webhook_disable_after_failures,
            s.webhook_concurrency,
            s.webhook_poll_seconds,
            max(s.webhook_poll_seconds, s.webhook_idle_poll_seconds),
        )

    @property
    def lease(self) -> timedelta:
        """How long a claim holds a delivery: one try, recording it, and room for a slow database."""
        return timedelta(seconds=self.timeout + max(5.0, self.timeout))


class WebhookDispatcher:
    """`run(stop)` is the background task; `wake()` makes it look for work at once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: Sender,
        box: SecretBox,
        policy: DispatchPolicy,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._sessions, self._sender, self._box, self._policy = sessions, sender, box, policy
        self._uniform = uniform
        self._wake = asyncio.Event()
        self._room = asyncio.Condition()
        self._in_flight = 0
        self._keys: dict[bytes, bytes] = {}  # ciphertext -> HMAC key: decrypt once, not per try

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; then let the batches in flight finish and record."""
        batches: set[asyncio.Task[None]] = set()
        backoff = self._policy.poll_seconds
        # Claim in chunks of at least half the slots, not one row per freed slot.
        least = max(1, self._policy.concurrency // 2)
        while not stop.is_set():
            async with self._room:
                await self._room.wait_for(lambda: self._policy.concurrency - self._in_flight >= least)
                free = self._policy.concurrency - self._in_flight
            self._wake.clear()
            try:
                claimed = await self._claim(free)
                # Nothing due: sleep until the next delivery is (a wake cuts it short).
                wait = self._policy.poll_seconds if claimed else await self._until_due()
                backoff = self._policy.poll_seconds
                report_ok()
            except (OSError, SQLAlchemyError) as exc:
                _log.warning("webhook claim failed, retrying in %.1fs: %s", backoff, exc)
                report_failure(exc)
                claimed, backoff = [], min(backoff * 2, 5.0)
                wait = backoff
            if claimed:
                self._in_flight += len(claimed)
                task = asyncio.create_task(self._deliver(claimed), name="webhook-batch")
                batches.add(task)
                task.add_done_callback(batches.discard)
                continue  # drain the backlog before sleeping
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        await asyncio.gather(*batches, return_exceptions=True)

    async def _until_due(self) -> float:
        """How long to sleep: until the next delivery falls due, within [poll, idle poll] seconds."""
        async with self._sessions() as session:
            due = await queue.seconds_until_due(session)
        idle = self._policy.idle_poll_seconds
        return idle if due is None else min(idle, max(self._policy.poll_seconds, due))

    async def dispatch_once(self, limit: int) -> int:
        """Claim, send and record one batch now; returns its size (tests and benchmarks)."""
        claimed = await self._claim(limit)
        self._in_flight += len(claimed)
        await self._deliver(claimed)
        return len(claimed)

    async def _claim(self, limit: int) -> list[Claimed]:
        async with self._sessions() as session, session.begin():
            return await queue.claim(session, limit, self._policy.lease)

    async def _deliver(self, claimed: Sequence[Claimed]) -> None:
        results = await asyncio.gather(*(self._send(c) for c in claimed))
        now = datetime.now(UTC)
        outcomes = [self._outcome(c, r, now) for c, r in zip(claimed, results, strict=True)]
        try:
            async with self._sessions() as session, session.begin():
                await queue.record(session, outcomes, now)
                await queue.count_failures(session, failure_runs(outcomes), self._policy.disable_after, now)
        except (OSError, SQLAlchemyError):
            # Their leases run out and they are tried again: delivered at least once.
            _log.exception("recording %d webhook outcomes failed", len(outcomes))
        self.wake()  # the loop may sleep until a later due time; these retries may fall due sooner

    async def _send(self, c: Claimed) -> AttemptResult:
        try:
            key = self._keys.get(c.secret_ciphertext)
            if key is None:
                if len(self._keys) > 10_000:
                    self._keys.clear()
                key = self._keys[c.secret_ciphertext] = secret_key(
                    self._box.decrypt(c.subscription_id, c.secret_ciphertext)
                )
            headers = webhook_headers(key, c.event_id, int(time.time()), c.body)
            return await self._sender.post(c.url, c.body, headers)
        except Exception as exc:  # one bad row must not sink its batch
            _log.exception("webhook delivery %s could not be attempted", c.id)
            return AttemptResult(datetime.now(UTC), 0, error=f"internal error: {type(exc).__name__}")
        finally:
            async with self._room:
                self._in_flight -= 1
                self._room.notify_all()

    def _outcome(self, c: Claimed, result: AttemptResult, now: datetime) -> Outcome:
        if result.ok:
            return Outcome(c, result, DeliveryStatus.SUCCEEDED, None)
        delay = retry_delay(self._policy.schedule, c.attempt + 1, self._policy.jitter, self._uniform)
        if delay is None:
            return Outcome(c, result, DeliveryStatus.DEAD, None)
        return Outcome(c, result, DeliveryStatus.PENDING, now + timedelta(seconds=delay))


def failure_runs(outcomes: Sequence[Outcome]) -> list[FailureRun]:
    """Per subscription: did a try succeed, and how many failed after the last success ended."""
    runs: dict[object, FailureRun] = {}
    ordered = sorted(outcomes, key=lambda o: o.result.started_at + timedelta(milliseconds=o.result.latency_ms))
    for o in ordered:
        sub = o.claimed.subscription_id
        run = runs.get(sub, FailureRun(sub, False, 0))
        runs[sub] = FailureRun(sub, True, 0) if o.result.ok else FailureRun(sub, run.reset, run.failures + 1)
    return list(runs.values())
