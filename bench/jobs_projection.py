"""Projection throughput of the jobs service: simulated runners flood it with events for 100 jobs at once.

A local stack (identity, datasets, jobs; no runner) is started here on free ports. A tiny dataset is uploaded,
`--jobs` jobs are submitted through the gateway (config epochs 50), then runner events for all of them are
published as fast as one `KafkaEventPublisher` can (batches of `--batch`): per job a lifecycle `started`, then
for epochs 1..N an `epoch.progress` and a `heartbeat` each, round-robin over the jobs (as concurrent runners
would interleave them).

Measures (figures printed; the baseline is the publish rate itself, measured in this process):

- published events/s (publisher start of the first batch -> broker ack of the last);
- applied events/s: until every job's `epoch` reads N through GET /api/v1/jobs (polled every 0.25 s), and
  precisely from the jobs database's inbox (`processed_events.processed_at` of each of our event ids) for the
  lifecycle and progress events; heartbeats are not claimed in the inbox (stamping the newest heartbeat is
  idempotent by itself), so they count as applied when each job's `last_heartbeat_at` reaches its last
  heartbeat's `sent_at` (the database polled every 0.1 s); applied/published ratio;
- lag: last publish acknowledged -> last event applied (goal < 1 s), and throughput goal >= 1,000 events/s;
- CPU seconds the jobs service and PostgreSQL spent meanwhile (where the time goes).

    python bench/jobs_projection.py [--jobs 100] [--epochs 20] [--batch 400] [--py-spy OUT.json]

With `--py-spy OUT`, `py-spy record --nonblocking` samples the jobs service at 100 Hz during the run
(speedscope JSON); it slows the service somewhat, so take throughput figures from a run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from vtp_contracts import EventEnvelope
from vtp_contracts.catalog import EPOCH_PROGRESS, JOB_HEARTBEAT, JOB_LIFECYCLE
from vtp_contracts.events.jobs import EpochProgress, JobHeartbeat, JobLifecycle
from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.ports import isolated_config
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import OutboundEvent, decode_event, make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher

SOURCE = "trainer-runner"


def build_events(jobs: list[dict[str, Any]], project: str, epochs: int) -> list[OutboundEvent]:
    """started for every job, then per epoch a progress and a heartbeat for every job (round-robin)."""
    now = datetime.now(UTC)
    events = []
    for k, job in enumerate(jobs):
        ids = {"job_id": job["id"], "project_id": project, "attempt": 1}
        started = JobLifecycle(**ids, status="started", runner_id=f"bench-runner-{k}", occurred_at=now)
        events.append(make_event(JOB_LIFECYCLE, started, SOURCE))
    for epoch in range(1, epochs + 1):
        for k, job in enumerate(jobs):
            ids = {"job_id": job["id"], "project_id": project, "attempt": 1}
            progress = EpochProgress(
                **ids,
                epoch=epoch,
                total_epochs=50,
                train_losses={"box_loss": 1 / epoch, "cls_loss": 2 / epoch, "dfl_loss": 1.5 / epoch},
                val_metrics={"mAP50": epoch / 40, "mAP50-95": epoch / 80, "precision": 0.5, "recall": 0.5},
                learning_rate=0.01,
                epoch_seconds=1.0,
                eta_seconds=float(50 - epoch),
            )
            beat = JobHeartbeat(**ids, runner_id=f"bench-runner-{k}", epoch=epoch, sent_at=datetime.now(UTC))
            events += [make_event(EPOCH_PROGRESS, progress, SOURCE), make_event(JOB_HEARTBEAT, beat, SOURCE)]
    return events


def decoded_beats(events: list[OutboundEvent]) -> list[EventEnvelope[Any]]:
    """The heartbeats among `events`, decoded back (their payload has the job id and `sent_at`)."""
    return [decode_event(JOB_HEARTBEAT, e.headers, e.value) for e in events if e.topic == JOB_HEARTBEAT.topic]


async def publish_all(bootstrap: str, events: list[OutboundEvent], batch: int) -> tuple[float, float]:
    """Publish in batches, each acknowledged before the next; returns (start, end) wall times."""
    publisher = KafkaEventPublisher(bootstrap)
    await publisher.start()
    try:
        start = time.time()
        for i in range(0, len(events), batch):
            await publisher.publish(events[i : i + batch])
        return start, time.time()
    finally:
        await publisher.stop()


class ApiPoller(threading.Thread):
    """GET /api/v1/jobs?limit=200 every `every` s; notes when every job reads epoch `target`."""

    def __init__(self, api: httpx.Client, job_ids: set[str], target: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.api, self.job_ids, self.target, self.every = api, job_ids, target, every
        self.done_at: float | None = None
        self.polls, self.requeued = 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.done_at is None:
            items = self.api.get("/api/v1/jobs", params={"limit": 200}).json()["items"]
            self.polls += 1
            mine = [j for j in items if j["id"] in self.job_ids]
            self.requeued = sum(j["attempt"] > 1 for j in mine)
            if len(mine) == len(self.job_ids) and all(j["epoch"] >= self.target for j in mine):
                self.done_at = time.time()
                return
            self.stop.wait(self.every)


class HeartbeatPoller(threading.Thread):
    """Polls the jobs table every `every` s; notes when each job's last heartbeat shows in `last_heartbeat_at`."""

    def __init__(self, db_url: str, last_beat: dict[str, datetime], every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.db_url, self.last_beat, self.every = db_url, last_beat, every
        self.seen: dict[str, float] = {}  # job id -> when its last heartbeat was first seen applied
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._poll())

    async def _poll(self) -> None:
        conn = await asyncpg.connect(self.db_url)
        ids, ats = [uuid.UUID(i) for i in self.last_beat], list(self.last_beat.values())
        try:
            while not self.stop.is_set() and len(self.seen) < len(ids):
                rows = await conn.fetch(
                    "SELECT j.id FROM jobs j JOIN unnest($1::uuid[], $2::timestamptz[]) AS b(id, at) ON j.id = b.id"
                    " WHERE j.last_heartbeat_at >= b.at",
                    ids,
                    ats,
                )
                now = time.time()
                for r in rows:
                    self.seen.setdefault(str(r["id"]), now)
                await asyncio.sleep(self.every)
        finally:
            await conn.close()


async def inbox(db_url: str, ids: list[str]) -> list[tuple[str, float]]:
    """(event id, processed_at as a Unix time) of the given events the jobs service has applied."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT event_id, processed_at FROM processed_events WHERE consumer = 'jobs' AND event_id = ANY($1)", ids
        )
    finally:
        await conn.close()
    return [(r["event_id"], r["processed_at"].timestamp()) for r in rows]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (PostgreSQL: the postmaster's backends)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this script's process tree) so far."""
    t = psutil.cpu_times()
    busy = sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0)
    me = psutil.Process()
    ours = 0.0
    for p in [me, *me.children(recursive=True)]:  # exited children count in their parent's children_*
        try:
            c = p.cpu_times()
            ours += c.user + c.system + c.children_user + c.children_system
        except psutil.Error:
            continue
    return busy, ours


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20, help="epoch.progress events per job (N)")
    parser.add_argument("--batch", type=int, default=400, help="events per publish call")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the projection")
    parser.add_argument("--py-spy", type=Path, help="record the jobs service with py-spy into this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vtp-projection-") as tmp:
        root = Path(tmp)
        data = zip_dataset(generate(root / "d", images=12, seed=5), root / "d.zip")
        cfg = isolated_config(root / "run")
        stack = LocalStack(cfg)
        try:
            stack.up(services=("identity", "datasets", "jobs"))  # down() also after a failed up
            token = (cfg.run_path / "admin-token").read_text().strip()
            api = httpx.Client(base_url=cfg.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
            with open(data, "rb") as f:
                response = api.post("/api/v1/datasets", data={"name": "proj"}, files={"file": ("d.zip", f)})
            response.raise_for_status()
            dataset = response.json()["id"]
            project = api.get("/api/v1/auth/whoami").json()["project_id"]
            body = {"name": "p", "task_type": "detect", "model": "yolo11n", "dataset_id": dataset}
            start = time.perf_counter()
            jobs = []
            for i in range(args.jobs):
                r = api.post("/api/v1/jobs", json=body | {"name": f"p{i}", "config": {"epochs": 50, "imgsz": 64}})
                r.raise_for_status()
                jobs.append(r.json())
            submit_s = time.perf_counter() - start
            print(f"submitted {args.jobs} jobs in {submit_s:.2f} s ({args.jobs / submit_s:.1f} jobs/s)")

            events = build_events(jobs, project, args.epochs)
            topic_of = {e.id: e.topic for e in events}
            # Each job's last heartbeat (the latest wins in the dict): its `sent_at` shows once all are applied.
            last_beat = {str(e.data.job_id): e.data.sent_at for e in decoded_beats(events)}
            n_progress = args.jobs * args.epochs
            components = {c.name: c.pid for c in stack.components()}
            jobs_pid, pg_pid = components["jobs"], components["postgres"]
            assert jobs_pid is not None and pg_pid is not None
            db_url = cfg.database_url("jobs").replace("postgresql+asyncpg://", "postgresql://", 1)

            spy = None
            if args.py_spy:
                exe = shutil.which("py-spy")
                if exe is None:
                    raise SystemExit("py-spy is not installed (pip install py-spy)")
                spy = subprocess.Popen(
                    [
                        exe,
                        "record",
                        "-p",
                        str(jobs_pid),
                        "-o",
                        str(args.py_spy),
                        "-f",
                        "speedscope",
                        "-r",
                        "100",
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)  # attached before the flood

            poller = ApiPoller(api, {j["id"] for j in jobs}, args.epochs)
            beats = HeartbeatPoller(db_url, last_beat)
            cpu_jobs, cpu_pg = cpu_seconds(jobs_pid), cpu_seconds(pg_pid)
            busy0, ours0 = machine_cpu()
            poller.start()
            beats.start()
            pub_start, pub_end = asyncio.run(publish_all(cfg.kafka_bootstrap, events, args.batch))
            poller.join(args.timeout)
            poller.stop.set()
            ids = [i for i, topic in topic_of.items() if topic != JOB_HEARTBEAT.topic]  # claimed in the inbox
            deadline = time.time() + 30  # other topics than the one the API poller watched: a moment more
            applied = asyncio.run(inbox(db_url, ids))
            while len(applied) < len(ids) and time.time() < deadline:
                time.sleep(0.25)
                applied = asyncio.run(inbox(db_url, ids))
            beats.join(max(deadline - time.time(), 0.0))
            beats.stop.set()
            cpu_jobs, cpu_pg = cpu_seconds(jobs_pid) - cpu_jobs, cpu_seconds(pg_pid) - cpu_pg
            busy1, ours1 = machine_cpu()
            other_cpu = max(busy1 - busy0 - (ours1 - ours0), 0.0)
            measured_s = time.time() - pub_start
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its profile and exits
                spy.wait(60)

            total = len(events)
            pub_s = pub_end - pub_start
            pub_rate = total / pub_s
            print(
                f"\n{args.jobs} jobs x (1 started + {args.epochs} epoch.progress + {args.epochs} heartbeats) = "
                f"{total} events, batches of {args.batch}"
            )
            print(f"published   {total:6d} events in {pub_s:6.2f} s = {pub_rate:8.0f} events/s   (baseline)")
            if poller.done_at is None:
                print(f"API: jobs never all reached epoch {args.epochs} within {args.timeout:.0f} s")
            else:
                api_s = poller.done_at - pub_start
                print(
                    f"API         all {args.jobs} jobs at epoch {args.epochs} {api_s:6.2f} s after the first publish: "
                    f"{n_progress / api_s:8.0f} progress events/s, {total / api_s:8.0f} events/s incl. others; "
                    f"lag {poller.done_at - pub_end:.2f} s ({poller.polls} polls every 0.25 s)"
                )
            if poller.requeued:
                print(f"WARNING: {poller.requeued} jobs were requeued by the heartbeat watchdog")
            times = sorted(t for _, t in applied)
            n_beats = total - len(ids)
            print(
                f"heartbeats  {len(beats.seen):6d}/{len(last_beat)} jobs show their last heartbeat"
                + (f", last {max(beats.seen.values()) - pub_end:+.2f} s vs last ack" if beats.seen else "")
            )
            if times:
                # The last of the inbox-claimed events or of the jobs' last heartbeats.
                last = max([times[-1], *beats.seen.values()])
                applied_s = last - pub_start
                done = len(times) + (n_beats if len(beats.seen) == len(last_beat) else 0)
                rate = done / applied_s
                print(
                    f"applied     {done:6d}/{total} events, last {applied_s:6.2f} s after the first publish: "
                    f"{rate:8.0f} events/s (goal >= 1000); ratio applied/published {rate / pub_rate:.3f}"
                )
                span = times[-1] - times[0]
                print(
                    f"            inbox: first applied {times[0] - pub_start:+.2f} s; steady rate first->last "
                    f"{(len(times) - 1) / span if span > 0 else float('nan'):.0f} claimed events/s"
                )
                print(f"lag         last publish acked -> last event applied: {last - pub_end:6.2f} s (goal < 1 s)")
                per_topic: dict[str, list[float]] = {}
                for event_id, t in applied:
                    per_topic.setdefault(topic_of[event_id], []).append(t)
                for topic, ts in sorted(per_topic.items()):
                    print(f"            {topic:<20} {len(ts):5d} applied, last {max(ts) - pub_end:+6.2f} s vs last ack")
                apply_s = max(applied_s, 1e-9)
                print(
                    f"CPU         jobs service {cpu_jobs:6.2f} s ({cpu_jobs / apply_s:.0%} of one core), "
                    f"PostgreSQL {cpu_pg:6.2f} s ({cpu_pg / apply_s:.0%}) over {applied_s:.2f} s; "
                    f"{cpu_jobs / done * 1e3:.2f} ms jobs-service CPU per event"
                )
            print(
                f"machine     other processes used {other_cpu / measured_s:.2f} of {psutil.cpu_count()} cores "
                f"meanwhile ({other_cpu:.1f} CPU-s over {measured_s:.1f} s)"
            )
            if args.py_spy:
                print(f"py-spy profile of the jobs service: {args.py_spy}")
        finally:
            stack.down()


if __name__ == "__main__":
    main()
