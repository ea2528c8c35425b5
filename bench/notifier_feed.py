"""Live feed latency and throughput: Kafka publish -> WebSocket receipt with hundreds of clients.

A local stack (identity, notifier and their infrastructure) is started here on free ports. `--clients`
WebSocket clients, spread over `--processes` child processes (so that measuring is not what saturates),
connect straight to the notifier over loopback, each subscribed to one job's `progress` messages. Then:

1. steady load: `--rate` `epoch.progress` events/s for `--seconds`, spread round-robin over the clients' jobs;
   each message's latency is receipt time minus the event's CloudEvents `time` (stamped just before it is
   produced). Baseline: a plain aiokafka consumer in this process reads the same events; its publish -> poll
   latency is the floor any Kafka subscriber pays, and the notifier's figures are printed as ratios to it.
   A tap on the notifier's Redis channel shows how much of the latency is storing and fanning out;
2. saturation: `--burst` events published as fast as one producer can; delivered messages/s at the clients
   (first to last receipt), next to the baseline consumer's rate.

Goal (issue 5): p99 < 50 ms at 500 clients and 1,000 events/s, on 2 cores.

    python bench/notifier_feed.py [--clients 500] [--rate 1000] [--seconds 20] [--burst 20000] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import connect

from vtp_contracts.catalog import EPOCH_PROGRESS
from vtp_contracts.events.jobs import EpochProgress
from vtp_localstack.ports import isolated_config
from vtp_localstack.stack import LocalStack
from vtp_runtime.http.app import GC_THRESHOLDS
from vtp_runtime.messaging.cloudevents import OutboundEvent, make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher

BURST_EPOCH = 1_000_000  # epochs from here on belong to the saturation phase


class Receipts:
    """Latencies (ms) of the steady phase and receipt times of the burst."""

    def __init__(self) -> None:
        self.steady: list[float] = []
        self.burst: list[float] = []

    def record(self, epoch: int, sent: datetime) -> None:
        now = time.time()
        if epoch >= BURST_EPOCH:
            self.burst.append(now)
        else:
            self.steady.append((now - sent.timestamp()) * 1000)


# --- clients, in child processes -------------------------------------------------------------------


async def client(url: str, headers: dict[str, str], job: uuid.UUID, receipts: Receipts, ready: asyncio.Event) -> None:
    async with connect(f"{url}?jobs={job}&types=progress", additional_headers=headers, max_queue=None) as ws:
        json.loads(await ws.recv())  # "subscribed"
        ready.set()
        async for text in ws:
            message = json.loads(text)
            receipts.record(message["data"]["epoch"], datetime.fromisoformat(message["time"]))


def client_process(
    url: str, headers: dict[str, str], jobs: list[uuid.UUID], ready: Any, done: Any, results: Any, counts: Any
) -> None:
    async def main() -> None:
        receipts = Receipts()
        events = [asyncio.Event() for _ in jobs]
        tasks = []
        for job, event in zip(jobs, events, strict=True):
            tasks.append(asyncio.create_task(client(url, headers, job, receipts, event)))
            await asyncio.sleep(0.002)  # do not stampede the accept queue
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
        quiet_gc()
        ready.put(len(jobs))
        while not done.is_set():
            counts[0], counts[1] = len(receipts.steady), len(receipts.burst)
            await asyncio.sleep(0.05)
        results.put((receipts.steady, receipts.burst))
        for task in tasks:
            task.cancel()

    asyncio.run(main())


def quiet_gc() -> None:
    """The same collector settings as the services: a client's own GC pauses are not feed latency."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Clients:
    """The clients, spread over child processes; their receipts come back at the end."""

    def __init__(self, url: str, headers: dict[str, str], jobs: list[uuid.UUID], processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ready, self._results, self._done = ctx.Queue(), ctx.Queue(), ctx.Event()
        self._counts = [ctx.Array("i", 2) for _ in range(processes)]
        self._procs = [
            ctx.Process(
                target=client_process,
                args=(url, headers, jobs[i::processes], self._ready, self._done, self._results, self._counts[i]),
                daemon=True,
            )
            for i in range(processes)
        ]
        for proc in self._procs:
            proc.start()
        for _ in self._procs:
            self._ready.get(timeout=180)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def steady(self) -> int:
        return sum(c[0] for c in self._counts)

    def burst(self) -> int:
        return sum(c[1] for c in self._counts)

    def collect(self) -> Receipts:
        self._done.set()
        merged = Receipts()
        for _ in self._procs:
            steady, burst = self._results.get(timeout=60)
            merged.steady += steady
            merged.burst += burst
        for proc in self._procs:
            proc.join(10)
        return merged


# --- baseline and tap, in this process -------------------------------------------------------------


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
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for record in records:
                    epoch = json.loads(record.value)["epoch"]
                    receipts.record(epoch, datetime.fromisoformat(dict(record.headers)["ce_time"].decode()))
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


async def _settle(count: Callable[[], int], target: int, timeout: float = 30.0) -> None:
    """Wait until `target` receipts are in, or `timeout` passes (losses are then printed)."""
    for _ in range(int(timeout * 10)):
        if count() >= target:
            return
        await asyncio.sleep(0.1)


async def load(
    args: argparse.Namespace,
    clients: Clients,
    jobs: list[uuid.UUID],
    project: uuid.UUID,
    bootstrap: str,
    redis: str,
    cpu: CpuMeter,
) -> tuple[Receipts, Receipts]:
    floor, tap = Receipts(), Receipts()
    floor_started, tap_started = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(kafka_floor(bootstrap, floor, floor_started)),
        asyncio.create_task(fanout_tap(redis, tap, tap_started)),
    ]
    await floor_started.wait()
    await tap_started.wait()
    quiet_gc()

    def event(i: int, epoch: int) -> OutboundEvent:
        data = EpochProgress(job_id=jobs[i % len(jobs)], project_id=project, attempt=1, epoch=epoch, total_epochs=epoch)
        return make_event(EPOCH_PROGRESS, data, "bench")

    publisher = KafkaEventPublisher(bootstrap)
    await publisher.start()
    try:
        # Events of a job nobody watches wake the notifier from its idle poll pace (the first event
        # after a quiet spell may wait up to VTP_FEED_IDLE_FETCH_MAX_WAIT_MS): this measures a busy feed.
        nobody = uuid.uuid4()
        for epoch in range(1, 21):
            await publisher.publish(
                [
                    make_event(
                        EPOCH_PROGRESS,
                        EpochProgress(job_id=nobody, project_id=project, attempt=1, epoch=epoch, total_epochs=20),
                        "bench",
                    )
                ]
            )
            await asyncio.sleep(0.05)
        tick, per_tick = 0.01, max(1, round(args.rate * 0.01))
        n_steady = int(args.rate * args.seconds)
        cpu_before = cpu.sample()
        start = time.perf_counter()
        for sent in range(0, n_steady, per_tick):
            await publisher.publish([event(i, 1 + i // len(jobs)) for i in range(sent, min(sent + per_tick, n_steady))])
            delay = start + (sent // per_tick + 1) * tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        publish_s = time.perf_counter() - start
        cpu_after = cpu.sample()
        await _settle(clients.steady, n_steady)
        print(
            f"steady: {n_steady} events in {publish_s:.1f} s ({n_steady / publish_s:.0f}/s offered), "
            f"received {clients.steady()}"
        )
        used = {name: (cpu_after[name] - cpu_before.get(name, 0.0)) / publish_s for name in cpu_after}
        shares = ", ".join(f"{name} {cores:.2f}" for name, cores in sorted(used.items(), key=lambda x: -x[1]))
        print(f"  cores used meanwhile: {shares}; total {sum(used.values()):.2f} of {psutil.cpu_count()}")
        start = time.perf_counter()
        for sent in range(0, args.burst, 500):
            await publisher.publish([event(i, BURST_EPOCH + i) for i in range(sent, min(sent + 500, args.burst))])
        burst_s = time.perf_counter() - start
        await _settle(clients.burst, args.burst, timeout=120)
        print(
            f"burst: {args.burst} events published in {burst_s:.1f} s ({args.burst / burst_s:.0f}/s), "
            f"received {clients.burst()}"
        )
    finally:
        await publisher.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return floor, tap


class CpuMeter:
    """CPU seconds of the stack's processes (PostgreSQL with its backends) and of this bench's."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}

    def sample(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            try:
                family = [proc, *proc.children(recursive=True)] if name == "postgres" else [proc]
            except psutil.Error:
                continue
            total = 0.0
            for p in family:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    continue
            out[name] = total
        return out


def percentiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49], q[98], max(values)


def rate(times: list[float]) -> float:
    return len(times) / (max(times) - min(times)) if len(times) > 1 else float("nan")


def report(feed: Receipts, floor: Receipts, tap: Receipts) -> None:
    p50, p99, worst = percentiles(feed.steady)
    f50, f99, _ = percentiles(floor.steady)
    t50, t99, _ = percentiles(tap.steady)
    print(f"  notifier publish->WebSocket: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms (goal p99 < 50)")
    print(f"  baseline publish->plain Kafka consumer: p50 {f50:.1f} ms, p99 {f99:.1f} ms")
    print(f"  of which publish->stored and fanned out (Redis): p50 {t50:.1f} ms, p99 {t99:.1f} ms")
    print(f"  ratio notifier/baseline: p50 {p50 / f50:.2f}x, p99 {p99 / f99:.2f}x")
    print(
        f"  saturation: {rate(feed.burst):.0f} messages/s delivered to the clients; baseline Kafka consumer "
        f"{rate(floor.burst):.0f}/s; ratio {rate(feed.burst) / rate(floor.burst):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000, help="events/s in the steady phase")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--burst", type=int, default=20000, help="events in the saturation phase")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vtp-feed-bench-") as tmp:
        cfg = isolated_config(Path(tmp) / "run")
        stack = LocalStack(cfg)
        try:
            stack.up(services=("identity", "notifier"))
            token = (cfg.run_path / "admin-token").read_text().strip()
            auth = {"Authorization": f"Bearer {token}"}
            project = uuid.UUID(httpx.get(f"{cfg.gateway_url}/api/v1/auth/whoami", headers=auth).json()["project_id"])
            url = cfg.service_url("notifier").replace("http://", "ws://") + "/api/v1/ws"
            jobs = [uuid.uuid4() for _ in range(args.clients)]
            t0 = time.perf_counter()
            clients = Clients(url, auth, jobs, args.processes)
            print(f"{args.clients} clients in {args.processes} processes connected in {time.perf_counter() - t0:.1f} s")
            pids = {
                c.name: c.pid
                for c in stack.components()
                if c.pid and c.name in ("kafka", "postgres", "redis", "notifier")
            }
            pids |= {"bench": os.getpid()} | {f"clients-{i}": pid for i, pid in enumerate(clients.pids)}
            cpu = CpuMeter(pids)
            floor, tap = asyncio.run(load(args, clients, jobs, project, cfg.kafka_bootstrap, cfg.redis_url, cpu))
            report(clients.collect(), floor, tap)
        finally:
            stack.down()


if __name__ == "__main__":
    main()
