"""What an API key costs a predict request: the same load with a project token and with a key.

A local stack (one inference replica, metering on as always) is started on free ports and a small
detect model deployed (see access_common). Then requests of one 96x72 JPEG are sent through the
gateway, one at a time, alternating token / key (each first in half of the pairs) so both see the
same machine state:

- token: the project token (verified by identity once, then cached); the deployment has no limits,
  so no rate limit round trip;
- key: a deployment key with per-second and per-minute limits (their token buckets, and the key's
  revocation check, in one Redis round trip), verified once then cached.

It prints p50 and p99 of each and the differences (issue 12's goal: key adds <= 1 ms to p50 and
<= 3 ms to p99) and their ratios. What the key adds is one Redis round trip (the rate limit script,
which also checks revocation); on a machine whose cores are oversubscribed every extra process hop
waits for a core, so the bench also times that round trip alone, in this process, on the stack's
Redis with the key's two policies, next to a Redis PING.

    python bench/access_overhead.py [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx
import redis.asyncio as aioredis
from access_common import access_stack, jpeg, new_key, predict, send

from vtp_inference.adapters.rate_limiter import RedisRateLimiter
from vtp_inference.domain.keys import Limits
from vtp_inference.domain.limits import policies


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _round_trips(redis_url: str, count: int) -> dict[str, list[float]]:
    """The rate limit script's and a PING's round trip times (ms), alternating."""
    client = aioredis.from_url(redis_url)
    limiter = RedisRateLimiter(client)
    limits = Limits(per_second=100_000, per_minute=6_000_000)
    found = policies("key", uuid.uuid4(), limits, datetime.now(UTC), 300)
    out: dict[str, list[float]] = {"script": [], "ping": []}
    try:
        for i in range(count + 50):
            started = time.perf_counter()
            await limiter.acquire(found, uuid.uuid4(), 1, "")
            middle = time.perf_counter()
            await client.ping()
            if i >= 50:  # warm-up: connection made, script loaded
                out["script"].append((middle - started) * 1000)
                out["ping"].append((time.perf_counter() - middle) * 1000)
    finally:
        await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per credential")
    args = parser.parse_args()
    with access_stack(replicas=1) as setup:
        key = new_key(setup, {"per_second": 100_000, "per_minute": 6_000_000})
        image, deployment = jpeg(), setup.deployment["id"]
        times: dict[str, list[float]] = {"token": [], "key": []}
        inside: dict[str, list[float]] = {"token": [], "key": []}  # the route's own total_ms
        with httpx.Client(base_url=setup.gateway, timeout=60) as client:
            for credential in (setup.token, key) * 20:  # warm-up: model loaded, key and token cached
                assert predict(client, deployment, credential, image) == 200
            pair = [("token", setup.token), ("key", key)]
            for i in range(args.requests):
                for name, credential in pair if i % 2 else pair[::-1]:  # each goes first half the time
                    started = time.perf_counter()
                    answer = send(client, deployment, credential, image)
                    times[name].append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, answer.text
                    inside[name].append(float(answer.json()["total_ms"]))
        trips = asyncio.run(_round_trips(setup.redis_url, args.requests))
    p = {name: (statistics.median(v), _quantile(v, 0.99)) for name, v in times.items()}
    print(f"\n{args.requests} predicts each, through the gateway, alternating")
    for name, (p50, p99) in p.items():
        print(f"  {name:6s} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    d50, d99 = p["key"][0] - p["token"][0], p["key"][1] - p["token"][1]
    print(f"  key - token: p50 {d50:+.2f} ms (goal <= +1), p99 {d99:+.2f} ms (goal <= +3)")
    print(f"  ratio key / token: p50 {p['key'][0] / p['token'][0]:.3f}, p99 {p['key'][1] / p['token'][1]:.3f}")
    print("inside the predict route (its total_ms: from the route's start, admission included):")
    for name, values in inside.items():
        print(f"  {name:6s} p50 {statistics.median(values):7.2f} ms   p99 {_quantile(values, 0.99):7.2f} ms")
    print("the Redis round trip a key adds, timed alone in this process:")
    for name, values in trips.items():
        print(f"  {name:6s} p50 {statistics.median(values):7.3f} ms   p99 {_quantile(values, 0.99):7.3f} ms")


if __name__ == "__main__":
    main()
