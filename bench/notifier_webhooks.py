"""Webhook throughput: signed deliveries/s from the notifier to a local receiver.

A local stack (identity, notifier and their infrastructure) is started here on free ports, and a
minimal keep-alive HTTP receiver in a child process (it answers 204 and checks the Standard Webhooks
signature of every 25th delivery with the `standardwebhooks` package). `--subscriptions`
subscriptions of one project point at it; `--events` `job.lifecycle.v1` events are published to
Kafka at once, so `events x subscriptions` deliveries queue up.

Prints (ratios against a baseline measured in this process):

- deliveries/s the notifier achieves (receiver's first to last receipt) and the time from publishing
  until the last delivery; goal >= 500/s (issue 5);
- baseline: the same receiver driven directly by one `httpx.AsyncClient` with 8 requests in flight
  (the notifier's default per target), each body signed in this process: what the receiver and
  loopback allow without the platform;
- how many deliveries failed verification (must be 0).

    python bench/notifier_webhooks.py [--events 5000] [--subscriptions 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from vtp_contracts.catalog import JOB_LIFECYCLE
from vtp_contracts.events.jobs import JobLifecycle
from vtp_localstack.ports import free_port, isolated_config
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher

VERIFY_EVERY = 25


# --- the receiver (child process) ------------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.count = 0
        self.verified = 0
        self.bad = 0
        self.first = self.last = 0.0

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if path == "/__stats":
            stats = {
                "count": self.count,
                "verified": self.verified,
                "bad": self.bad,
                "first": self.first,
                "last": self.last,
            }
            return 200, json.dumps(stats).encode()
        if path.startswith("/__secret/"):
            self.secrets[path.removeprefix("/__secret")] = body.decode()
            return 204, b""
        if path == "/__reset":
            self.count = self.verified = self.bad = 0
            return 204, b""
        now = time.time()
        self.first = now if self.count == 0 else self.first
        self.last, self.count = now, self.count + 1
        if self.count % VERIFY_EVERY == 0:
            from standardwebhooks import Webhook, WebhookVerificationError

            try:
                Webhook(self.secrets[path]).verify(body, headers)
                self.verified += 1
            except (WebhookVerificationError, KeyError):
                self.bad += 1
        return 204, b""

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, payload = self.handle(method, path, headers, body)
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def run_receiver(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(Receiver().serve_client, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the bench -------------------------------------------------------------------------------------


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


async def baseline(url: str, secret: str, n: int, concurrency: int = 8) -> float:
    """Deliveries/s of a bare signed-POST loop against the same receiver."""
    body = json.dumps({"id": "x", "type": "job.lifecycle.v1", "data": {"status": "started"}})
    queue = list(range(n))
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def worker() -> None:
            while queue:
                queue.pop()
                msg_id, ts = str(uuid.uuid4()), int(time.time())
                headers = {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(ts),
                    "webhook-signature": sign(secret, msg_id, ts, body),
                }
                (
                    await client.post(url, content=body, headers=headers | {"content-type": "application/json"})
                ).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


async def flood(bootstrap: str, project: uuid.UUID, n: int) -> float:
    publisher = KafkaEventPublisher(bootstrap)
    await publisher.start()
    try:
        events = [
            make_event(
                JOB_LIFECYCLE,
                JobLifecycle(
                    job_id=uuid.uuid4(), project_id=project, attempt=1, status="started", occurred_at=datetime.now(UTC)
                ),
                "bench",
            )
            for _ in range(n)
        ]
        start = time.time()
        for i in range(0, n, 500):
            await publisher.publish(events[i : i + 500])
        return start
    finally:
        await publisher.stop()


def wait_for(receiver: str, target: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats: dict[str, Any] = httpx.get(f"{receiver}/__stats").json()
        if stats["count"] >= target or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--subscriptions", type=int, default=2)
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.receiver:
        run_receiver(args.receiver)
        return
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    child = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)])
    with tempfile.TemporaryDirectory(prefix="vtp-webhook-bench-") as tmp:
        cfg = isolated_config(Path(tmp) / "run")
        stack = LocalStack(cfg)
        try:
            stack.up(services=("identity", "notifier"))
            token = (cfg.run_path / "admin-token").read_text().strip()
            api = httpx.Client(base_url=cfg.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            project = uuid.UUID(api.get("/api/v1/auth/whoami").json()["project_id"])
            secrets = []
            for i in range(args.subscriptions):
                created = api.post(
                    "/api/v1/subscriptions", json={"url": f"{receiver}/hook/{i}", "event_types": ["job.lifecycle.v1"]}
                )
                created.raise_for_status()
                secrets.append(created.json()["secret"])
                httpx.post(f"{receiver}/__secret/hook/{i}", content=created.json()["secret"]).raise_for_status()

            base_rate = asyncio.run(baseline(f"{receiver}/hook/0", secrets[0], 3000))
            httpx.post(f"{receiver}/__reset").raise_for_status()

            total = args.events * args.subscriptions
            published_at = asyncio.run(flood(cfg.kafka_bootstrap, project, args.events))
            stats = wait_for(receiver, total, timeout=600)
            rate = stats["count"] / max(stats["last"] - stats["first"], 1e-9)
            print(
                f"{args.events} events x {args.subscriptions} subscriptions = {total} deliveries; "
                f"received {stats['count']}"
            )
            print(
                f"  notifier: {rate:.0f} signed deliveries/s (goal >= 500); publish -> last delivery "
                f"{stats['last'] - published_at:.1f} s"
            )
            print(
                f"  baseline (bare signed POST loop, 8 in flight): {base_rate:.0f}/s; "
                f"ratio notifier/baseline {rate / base_rate:.2f}"
            )
            print(f"  signatures checked with standardwebhooks: {stats['verified']} ok, {stats['bad']} bad")
        finally:
            stack.down()
            child.terminate()


if __name__ == "__main__":
    main()
