"""Live feed latency and throughput: Kafka publish -> WebSocket receipt with hundreds of clients.

A local stack (identity, notifier and their infrastructure) is started here on free ports. `--clients`
WebSocket clients connect straight to the notifier over loopback, each subscribed to one job's `progress`
messages. Then, in this one process:

1. steady load: `--rate` `epoch.progress` events/s for `--seconds`, spread round-robin over the clients' jobs;
   each message's latency is receipt time minus the event's CloudEvents `time` (stamped just before it is
   produced). Baseline: a plain aiokafka consumer in this process reads the same events; its publish -> poll
   latency is the floor any Kafka subscriber pays, and the notifier's figures are printed as ratios to it;
2. saturation: `--burst` events published as fast as one producer can; delivered messages/s at the clients
   (first to last receipt), next to the publish rate.

Goal (issue 5): p99 < 50 ms at 500 clients and 1,000 events/s, on 2 cores.

    python bench/notifier_feed.py [--clients 500] [--rate 1000] [--seconds 20] [--burst 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import ClientConnection, connect

from vtp_contracts.catalog import EPOCH_PROGRESS
from vtp_contracts.events.jobs import EpochProgress
from vtp_localstack.ports import isolated_config
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher

BURST_EPOCH = 1_000_000  # epochs from here on belong to the saturation phase


class Receipts:
    """Latencies (ms) of the steady phase and receipt times of the burst, across every client."""

    def __init__(self) -> None:
        self.steady: list[float] = []
        self.burst: list[float] = []

    def record(self, epoch: int, sent: datetime) -> None:
        now = time.time()
        if epoch >= BURST_EPOCH:
            self.burst.append(now)
        else:
            self.steady.append((now - sent.timestamp()) * 1000)


async def client(url: str, headers: dict[str, str], job: uuid.UUID, receipts: Receipts, ready: asyncio.Event) -> None:
    ws: ClientConnection
    async with connect(f"{url}?jobs={job}&types=progress", additional_headers=headers, max_queue=None) as ws:
        json.loads(await ws.recv())  # "subscribed"
        ready.set()
        async for text in ws:
            message = json.loads(text)
            receipts.record(message["data"]["epoch"], datetime.fromisoformat(message["time"]))


async def kafka_floor(bootstrap: str, receipts: Receipts, started: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        EPOCH_PROGRESS.topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        for _ in range(400):  # the group's first assignment
            if consumer.assignment():
                break
            await asyncio.sleep(0.05)
        await consumer.seek_to_end()
        started.set()
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers)
                    epoch = json.loads(record.value)["epoch"]
                    receipts.record(epoch, datetime.fromisoformat(headers["ce_time"].decode()))
    finally:
        await consumer.stop()


async def fanout_tap(redis_url: str, receipts: Receipts, started: asyncio.Event) -> None:
    """Where the time goes: the moment the storing replica fans a batch out on Redis."""
    client = aioredis.from_url(redis_url)
    async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe("vtp:notifier:feed")
        started.set()
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                for item in json.loads(message["data"]):
                    receipts.record(item[7]["epoch"], datetime.fromisoformat(item[6]))


def percentiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49], q[98], max(values)


async def run(
    args: argparse.Namespace, cfg_url: str, token: str, project: uuid.UUID, bootstrap: str, redis_url: str
) -> None:
    ws_url = cfg_url.replace("http://", "ws://") + "/api/v1/ws"
    headers = {"Authorization": f"Bearer {token}"}
    jobs = [uuid.uuid4() for _ in range(args.clients)]
    feed, floor = Receipts(), Receipts()
    tasks, readies = [], []
    t0 = time.perf_counter()
    for job in jobs:
        ready = asyncio.Event()
        readies.append(ready)
        tasks.append(asyncio.create_task(client(ws_url, headers, job, feed, ready)))
        await asyncio.sleep(0.002)  # do not stampede the accept queue
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    print(f"{args.clients} clients connected and subscribed in {time.perf_counter() - t0:.1f} s")
    floor_started, tap_started, tap = asyncio.Event(), asyncio.Event(), Receipts()
    tasks.append(asyncio.create_task(kafka_floor(bootstrap, floor, floor_started)))
    tasks.append(asyncio.create_task(fanout_tap(redis_url, tap, tap_started)))
    await floor_started.wait()
    await tap_started.wait()

    publisher = KafkaEventPublisher(bootstrap)
    await publisher.start()
    try:

        def event(i: int, epoch: int) -> OutboundEvent:
            data = EpochProgress(
                job_id=jobs[i % len(jobs)], project_id=project, attempt=1, epoch=epoch, total_epochs=epoch
            )
            return make_event(EPOCH_PROGRESS, data, "bench")

        tick, per_tick = 0.01, max(1, round(args.rate * 0.01))
        n_steady = int(args.rate * args.seconds)
        start = time.perf_counter()
        for sent in range(0, n_steady, per_tick):
            await publisher.publish([event(i, 1 + i // len(jobs)) for i in range(sent, min(sent + per_tick, n_steady))])
            delay = start + (sent // per_tick + 1) * tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        publish_s = time.perf_counter() - start
        await _settle(lambda: len(feed.steady), n_steady)
        p50, p99, worst = percentiles(feed.steady)
        f50, f99, _ = percentiles(floor.steady)
        t50, t99, _ = percentiles(tap.steady)
        print(
            f"steady: {n_steady} events in {publish_s:.1f} s ({n_steady / publish_s:.0f}/s offered); "
            f"received {len(feed.steady)}/{n_steady}"
        )
        print(f"  notifier publish->WebSocket: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms (goal p99 < 50)")
        print(f"  baseline publish->plain Kafka consumer: p50 {f50:.1f} ms, p99 {f99:.1f} ms")
        print(f"  of which publish->stored and fanned out (Redis): p50 {t50:.1f} ms, p99 {t99:.1f} ms")
        print(f"  ratio notifier/baseline: p50 {p50 / f50:.2f}x, p99 {p99 / f99:.2f}x")

        start = time.perf_counter()
        for sent in range(0, args.burst, 500):
            await publisher.publish([event(i, BURST_EPOCH + i) for i in range(sent, min(sent + 500, args.burst))])
        burst_publish_s = time.perf_counter() - start
        await _settle(lambda: len(feed.burst), args.burst, timeout=120)
        span = max(feed.burst) - min(feed.burst)
        floor_span = max(floor.burst) - min(floor.burst) if len(floor.burst) > 1 else float("nan")
        print(
            f"saturation: published {args.burst} in {burst_publish_s:.1f} s ({args.burst / burst_publish_s:.0f}/s); "
            f"delivered {len(feed.burst)} at {len(feed.burst) / span:.0f} messages/s "
            f"(baseline Kafka consumer {len(floor.burst) / floor_span:.0f}/s; ratio {floor_span / span:.2f})"
        )
    finally:
        await publisher.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _settle(count: Callable[[], int], target: int, timeout: float = 30.0) -> None:
    """Wait until `target` receipts are in, or `timeout` passes (losses are then printed)."""
    for _ in range(int(timeout * 10)):
        if count() >= target:
            return
        await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000, help="events/s in the steady phase")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--burst", type=int, default=20000, help="events in the saturation phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vtp-feed-bench-") as tmp:
        cfg = isolated_config(Path(tmp) / "run")
        stack = LocalStack(cfg)
        try:
            stack.up(services=("identity", "notifier"))
            token = (cfg.run_path / "admin-token").read_text().strip()
            whoami = httpx.get(f"{cfg.gateway_url}/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
            project = uuid.UUID(whoami.json()["project_id"])
            asyncio.run(run(args, cfg.service_url("notifier"), token, project, cfg.kafka_bootstrap, cfg.redis_url))
        finally:
            stack.down()


if __name__ == "__main__":
    main()
