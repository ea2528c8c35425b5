"""Platform overhead of a small training run: the same job through the platform and as a bare `model.train()`.

One script, one machine, one dataset. A local stack (identity, datasets, jobs, trainer-runner) is started
here on free ports; a 200-image shapes dataset is uploaded through the gateway and trained as a job (YOLO11n
detect, imgsz 128, batch 16, workers 0, seed 0, CPU). Then the job's pinned snapshot is materialised here (its
frozen splits, through the datasets REST API) and trained bare, in a fresh interpreter, with the same
keyword arguments as the runner passes. The two runs never overlap.

`--rounds` pairs are run (default 2), the order alternating (platform then bare, bare then platform), since
the machine's other load drifts; the CPU used meanwhile by this bench's processes, by other processes and
stolen by the hypervisor is printed per run. Each round's platform run is a new job (the runner's dataset cache
is cold only in the first), each bare run a new process on the data materialised once, before any run.

Prints (ratios against the bare run, measured in this process):

- (a) wall time submit -> `completed` (as seen polling the job) vs the bare process's wall time; goal <= 1.10;
- (b) submit -> first `epoch.progress` (its Kafka timestamp), less that epoch's `epoch_seconds`; goal <= 3 s.
  The bare equivalent (process launch -> end of epoch 1, less epoch 1) is printed next to it;
- (c) the job's best val mAP50 (`best_metrics`) vs the bare run's final metrics (best.pt validated); goal <= 0.02.

Offline: models from yaml, YOLO_OFFLINE=1, YOLO_AUTOINSTALL=0, plots=False. Before either run, torch and
ultralytics are imported once in a throw-away process so that neither run pays for a cold page cache. The
runner keeps a spare trainer child warm (docs/trainer-plugins.md; `VTP_PREWARM_CHILDREN=false` in this script's
environment turns that off); before each run the bench waits until the runner idles, so a spare warming up after
a job never competes with the next timed run.

    python bench/training_overhead.py [--epochs 10] [--images 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

IMGSZ, BATCH, SEED = 128, 16, 0
TERMINAL = ("completed", "failed", "cancelled")


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and its live descendants; exited ones count in their parent's children_*."""
    total = 0.0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            c = p.cpu_times()
            total += c.user + c.system + c.children_user + c.children_system
        except psutil.Error:
            continue
    return total


class CpuMeter:
    """CPU used during a run: per stack component, by this script (and its bare child), by others, stolen."""

    def __init__(self, components: dict[str, int]) -> None:
        self.components = {name: psutil.Process(pid) for name, pid in components.items()}
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, dict[str, float]]:
        t = psutil.cpu_times()
        steal = getattr(t, "steal", 0.0)
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0) - steal - getattr(t, "guest", 0.0)
        me = psutil.Process().cpu_times()
        # trainer-runner's tree holds its trainer child; "bench script" its bare child
        parts = {name: _tree_cpu(proc) for name, proc in self.components.items()}
        parts["bench script"] = me.user + me.system + me.children_user + me.children_system
        return time.time(), busy, steal, parts

    def summary(self) -> str:
        t1, busy1, steal1, parts1 = self._sample()
        t0, busy0, steal0, parts0 = self.start
        span = max(t1 - t0, 1e-9)
        used = {name: (parts1[name] - parts0[name]) / span for name in parts1}
        other = max((busy1 - busy0) / span - sum(used.values()), 0.0)
        top = sorted(used.items(), key=lambda kv: -kv[1])[:4]
        return (
            f"cores over {span:.1f} s: {', '.join(f'{name} {v:.2f}' for name, v in top)}, "
            f"stack+bench {sum(used.values()):.2f}; other processes {other:.2f}, steal {(steal1 - steal0) / span:.2f}"
        )


def wait_quiet(pid: int | None, limit: float = 30.0) -> float:
    """Wait until a process tree idles (a runner warming its next spare child); returns the seconds waited."""
    if pid is None:
        return 0.0
    proc, start = psutil.Process(pid), time.monotonic()
    before = _tree_cpu(proc)
    while time.monotonic() - start < limit:
        time.sleep(0.5)
        now = _tree_cpu(proc)
        if now - before < 0.05:  # under a tenth of a core
            break
        before = now
    return time.monotonic() - start


# -- the bare run (a child process of this script) -----------------------------------------------------


def bare_child(spec_path: Path, out_path: Path) -> None:
    """Train as a user would without the platform; write timings and metrics as JSON to `out_path`."""
    spec: dict[str, Any] = json.loads(spec_path.read_text())
    from ultralytics.models import YOLO  # the environment (offline, config dir) comes from the parent

    imported = time.time()
    epochs: list[dict[str, Any]] = []

    def on_fit_epoch_end(trainer: Any) -> None:
        epoch = int(trainer.epoch) + 1
        if len(epochs) < epoch <= int(trainer.epochs):  # final validation calls this once more, as epochs + 1
            epochs.append(
                {
                    "epoch": epoch,
                    "at": time.time(),
                    "epoch_seconds": float(trainer.epoch_time),
                    "mAP50": float(trainer.metrics.get("metrics/mAP50(B)", float("nan"))),
                }
            )

    model = YOLO("yolo11n.yaml", task="detect")
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    start = time.time()
    model.train(**spec["kwargs"])
    end = time.time()
    assert model.trainer is not None
    final = {k: float(v) for k, v in model.trainer.metrics.items()}  # best.pt, validated after training
    result = {"imported": imported, "train_start": start, "train_end": end, "epochs": epochs, "final": final}
    out_path.write_text(json.dumps(result))


def run_bare(work: Path, data_yaml: Path, epochs: int) -> dict[str, Any]:
    """Start the bare child and wait; adds `launched` and `exited` (wall clock) to its result."""
    kwargs = {
        "data": str(data_yaml),
        "epochs": epochs,
        "imgsz": IMGSZ,
        "batch": BATCH,
        "workers": 0,
        "seed": SEED,
        "deterministic": True,
        "device": "cpu",
        "plots": False,
        "verbose": False,  # as the runner passes it
        "project": str(work / "runs"),
        "name": "train",
        "exist_ok": True,
    }
    spec, out = work / "spec.json", work / "result.json"
    spec.write_text(json.dumps({"kwargs": kwargs}))
    env = {
        **os.environ,
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "0",
        "YOLO_CONFIG_DIR": str(work / "ultralytics-config"),
        "PYTHONUNBUFFERED": "1",
    }
    launched = time.time()
    with open(work / "bare.log", "wb") as log:
        code = subprocess.run(
            [sys.executable, __file__, "--bare-child", str(spec), str(out)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    exited = time.time()
    if code != 0:
        raise RuntimeError(f"bare training failed ({code}); see {work / 'bare.log'}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result | {"launched": launched, "exited": exited}


def warm_imports(work: Path) -> float:
    """Import torch and ultralytics once in a throw-away process (page cache); returns its seconds."""
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "ultralytics-warm")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, ultralytics.models"], env=env, check=True)
    return time.perf_counter() - start


# -- the platform run ----------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Records runner events (epoch progress, lifecycle) with their Kafka timestamps."""

    TOPICS = ("epoch.progress.v1", "job.lifecycle.v1")

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.events: list[tuple[str, float, float, dict[str, Any]]] = []  # topic, kafka ts, received, data
        self.ready, self.stop = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
        await consumer.start()
        try:
            parts = [TopicPartition(t, p) for t in self.TOPICS for p in sorted(consumer.partitions_for_topic(t) or ())]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)  # a fresh stack: nothing from other runs is there
            self.ready.set()
            while not self.stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                received = time.time()
                for records in batches.values():
                    for record in records:
                        data = json.loads(record.value or b"{}")
                        self.events.append((record.topic, record.timestamp / 1000, received, data))
        finally:
            await consumer.stop()

    def first(self, job_id: str, topic: str, **match: Any) -> tuple[float, float, dict[str, Any]] | None:
        for t, ts, received, data in list(self.events):
            if t == topic and data.get("job_id") == job_id and all(data.get(k) == v for k, v in match.items()):
                return ts, received, data
        return None


def upload(api: httpx.Client, path: Path, name: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        response = api.post("/api/v1/datasets", data={"name": name}, files={"file": ("d.zip", f, "application/zip")})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def run_platform(api: httpx.Client, dataset_id: str, epochs: int) -> dict[str, Any]:
    """Submit the job and poll it to the end; returns the times seen and the final job."""
    config = {"epochs": epochs, "imgsz": IMGSZ, "batch": BATCH, "workers": 0, "seed": SEED}
    body = {"name": "overhead", "task_type": "detect", "model": "yolo11n", "dataset_id": dataset_id, "config": config}
    submitted = time.time()
    response = api.post("/api/v1/jobs", json=body)
    accepted = time.time()
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    first_epoch_seen: float | None = None
    deadline = time.monotonic() + 3600
    while job["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job never finished: {job}")
        time.sleep(0.1)
        job = api.get(f"/api/v1/jobs/{job['id']}").json()
        if first_epoch_seen is None and job["epoch"] >= 1:
            first_epoch_seen = time.time()
    done = time.time()
    time.sleep(1.0)  # late checkpoint events (topics are unordered) settle before best_metrics is read
    job = api.get(f"/api/v1/jobs/{job['id']}").json()
    metrics = api.get(f"/api/v1/jobs/{job['id']}/metrics").json()
    return {
        "submitted": submitted,
        "accepted": accepted,
        "first_epoch_seen": first_epoch_seen,
        "done": done,
        "job": job,
        "metrics": metrics,
    }


# -- the report ---------------------------------------------------------------------------------------


def row(label: str, platform: str, bare: str, note: str = "") -> None:
    print(f"{label:<44}{platform:>12}{bare:>12}   {note}")


def report(epochs: int, plat: dict[str, Any], watcher: Watcher, bare: dict[str, Any]) -> dict[str, float]:
    """Print one round's table; returns its headline figures."""
    job, sub = plat["job"], plat["submitted"]
    started = watcher.first(job["id"], "job.lifecycle.v1", status="started")
    first = watcher.first(job["id"], "epoch.progress.v1", epoch=1)
    last = watcher.first(job["id"], "epoch.progress.v1", epoch=epochs)
    completed = watcher.first(job["id"], "job.lifecycle.v1", status="completed")
    plat_wall = plat["done"] - sub
    bare_wall = bare["exited"] - bare["launched"]
    bare_train = bare["train_end"] - bare["train_start"]
    bare_e1 = bare["epochs"][0]
    bare_first = bare_e1["at"] - bare["launched"] - bare_e1["epoch_seconds"]
    plat_epochs = {e["epoch"]: e for e in plat["metrics"]["attempts"][-1]["epochs"]}
    plat_secs = [plat_epochs[e]["epoch_seconds"] or 0.0 for e in sorted(plat_epochs)]
    bare_secs = [e["epoch_seconds"] for e in bare["epochs"]]

    print(f"job {job['id']}: status {job['status']}, attempt {job['attempt']}, epoch {job['epoch']}/{epochs}")
    row("", "platform", "bare", "")
    row(
        "(a) wall: submit->completed | launch->exit",
        f"{plat_wall:.2f} s",
        f"{bare_wall:.2f} s",
        f"ratio {plat_wall / bare_wall:.3f} (goal <= 1.10)",
    )
    row("    vs bare model.train() call only", "", f"{bare_train:.2f} s", f"ratio {plat_wall / bare_train:.3f}")
    row(
        "    sum of epoch_seconds",
        f"{sum(plat_secs):.2f} s",
        f"{sum(bare_secs):.2f} s",
        f"ratio {sum(plat_secs) / sum(bare_secs):.3f}",
    )
    row(
        "    wall outside epochs (wall - sum)",
        f"{plat_wall - sum(plat_secs):.2f} s",
        f"{bare_wall - sum(bare_secs):.2f} s",
        f"platform - bare = {plat_wall - sum(plat_secs) - bare_wall + sum(bare_secs):+.2f} s",
    )
    print(f"      per epoch, platform: {' '.join(f'{s:.1f}' for s in plat_secs)}")
    print(f"      per epoch, bare:     {' '.join(f'{s:.1f}' for s in bare_secs)}")
    plat_first = float("nan")
    if first is None:
        print("(b) no epoch.progress for epoch 1 was seen on Kafka")
    else:
        ts, received, data = first
        plat_first = ts - sub - (data.get("epoch_seconds") or 0)
        row(
            "(b) to 1st epoch.progress less epoch 1",
            f"{plat_first:.2f} s",
            f"{bare_first:.2f} s",
            f"goal <= 3 s; platform - bare = {plat_first - bare_first:.2f} s",
        )
        if plat["first_epoch_seen"] is not None:
            row(
                "    epoch 1 visible in the API after publish",
                f"{plat['first_epoch_seen'] - ts:.2f} s",
                "",
                f"(Kafka consumer got it {received - ts:.2f} s after publish; API polled every 0.1 s)",
            )
    print("    platform, from submit (Kafka timestamps):  ", end="")
    marks = [("POST returned", plat["accepted"]), ("started", started[0] if started else None)]
    marks += [("1st progress", first[0] if first else None), ("last progress", last[0] if last else None)]
    marks += [("completed", completed[0] if completed else None), ("seen polling", plat["done"])]
    print(", ".join(f"{name} {at - sub:.2f}" for name, at in marks if at is not None))
    print("    bare, from launch:                          ", end="")
    marks = [("imports done", bare["imported"]), ("train() called", bare["train_start"])]
    marks += [("1st epoch", bare_e1["at"]), ("last epoch", bare["epochs"][-1]["at"])]
    marks += [("train() returned", bare["train_end"]), ("exited", bare["exited"])]
    print(", ".join(f"{name} {at - bare['launched']:.2f}" for name, at in marks))
    best = job["best_metrics"].get("mAP50", float("nan"))
    final = bare["final"].get("metrics/mAP50(B)", float("nan"))
    row(
        "(c) mAP50: job best_metrics | bare final",
        f"{best:.4f}",
        f"{final:.4f}",
        f"|diff| {abs(best - final):.4f} (goal <= 0.02); best epoch {job['best_epoch']}",
    )
    diffs = [
        abs((plat_epochs[e["epoch"]]["val_metrics"] or {}).get("mAP50", float("nan")) - e["mAP50"])
        for e in bare["epochs"]
        if e["epoch"] in plat_epochs
    ]
    print(
        f"    per-epoch val mAP50, platform vs bare: max |diff| {max(diffs, default=float('nan')):.4f} "
        f"over {len(diffs)} epochs"
    )
    return {
        "plat_wall": plat_wall,
        "bare_wall": bare_wall,
        "bare_train": bare_train,
        "plat_first": plat_first,
        "bare_first": bare_first,
        "map_diff": abs(best - final),
        "plat_outside": plat_wall - sum(plat_secs),
        "bare_outside": bare_wall - sum(bare_secs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="platform+bare pairs; the order alternates")
    parser.add_argument("--bare-child", nargs=2, type=Path, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(*args.bare_child)
        return

    from vtp_dice.materialize import materialize
    from vtp_dice.remote import RestSnapshotSource
    from vtp_dice.sample import generate, zip_dataset
    from vtp_localstack.ports import isolated_config
    from vtp_localstack.stack import LocalStack

    with tempfile.TemporaryDirectory(prefix="vtp-overhead-") as tmp:
        root = Path(tmp)
        data_zip = zip_dataset(generate(root / "dataset", images=args.images, seed=0), root / "dataset.zip")
        cfg = isolated_config(root / "run")
        stack = LocalStack(cfg)
        watcher = Watcher(cfg.kafka_bootstrap)
        try:
            stack.up(services=("identity", "datasets", "jobs", "trainer-runner"))  # down() also after a failed up
            token = (cfg.run_path / "admin-token").read_text().strip()
            api = httpx.Client(base_url=cfg.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
            dataset = upload(api, data_zip, "overhead")["id"]
            # The head snapshot, frozen now; a job submitted without snapshot_id pins this same one.
            snapshot = api.post(f"/api/v1/datasets/{dataset}/snapshots").raise_for_status().json()["id"]
            source = RestSnapshotSource(cfg.gateway_url, token, dataset, snapshot)
            entry = materialize(source, "detection", root / "bare-cache", source.splits())  # type: ignore[arg-type]
            warm_s = warm_imports(root)
            print(f"stack up; dataset {dataset} snapshot {snapshot}; torch+ultralytics warm-up import {warm_s:.1f} s")
            watcher.start()
            watcher.ready.wait(30)
            if watcher.error is not None:
                raise watcher.error
            print(
                f"\nYOLO11n detect, {args.images} images (160x128), imgsz {IMGSZ}, batch {BATCH}, "
                f"{args.epochs} epochs, workers 0, seed 0, CPU; {args.rounds} round(s), order alternating"
            )
            components = {c.name: c.pid for c in stack.components() if c.pid is not None}
            wait_quiet(components.get("trainer-runner"))  # its first spare child warms up at start
            figures = []
            for r in range(args.rounds):
                order = ("platform", "bare") if r % 2 == 0 else ("bare", "platform")
                plat: dict[str, Any] = {}
                bare: dict[str, Any] = {}
                loads: dict[str, str] = {}
                for which in order:
                    meter = CpuMeter(components)
                    if which == "platform":
                        plat = run_platform(api, dataset, args.epochs)
                        if plat["job"]["snapshot_id"] != snapshot:
                            print(f"WARNING: the job pinned {plat['job']['snapshot_id']}, the bare run uses {snapshot}")
                    else:
                        work = root / f"bare-{r}"
                        work.mkdir()
                        bare = run_bare(work, entry / "data.yaml", args.epochs)
                    loads[which] = meter.summary()
                    # After a job the runner warms its next spare trainer child: not during the next timed run.
                    wait_quiet(components.get("trainer-runner"))
                time.sleep(0.5)  # the watcher catches up with the last events
                print(f"\n-- round {r + 1}: {' then '.join(order)}")
                figures.append(report(args.epochs, plat, watcher, bare))
                for which in ("platform", "bare"):
                    print(f"    {which + ' run':<13}{loads[which]}")
            if len(figures) > 1:
                plat_wall = sum(f["plat_wall"] for f in figures)
                bare_wall = sum(f["bare_wall"] for f in figures)
                bare_train = sum(f["bare_train"] for f in figures)
                firsts = [f["plat_first"] - f["bare_first"] for f in figures]
                print(f"\n-- all {len(figures)} rounds")
                print(
                    f"(a) platform/bare wall {plat_wall / bare_wall:.3f} (goal <= 1.10); "
                    f"platform/bare train() {plat_wall / bare_train:.3f}"
                )
                outside = [f["plat_outside"] - f["bare_outside"] for f in figures]
                print(
                    "    wall outside epochs, platform - bare: "
                    f"{' '.join(f'{d:+.2f}' for d in outside)} s, mean {sum(outside) / len(outside):+.2f} s"
                )
                plat_firsts = " ".join(f"{f['plat_first']:.2f}" for f in figures)
                bare_firsts = " ".join(f"{f['bare_first']:.2f}" for f in figures)
                print(
                    f"(b) to 1st progress less epoch 1: platform {plat_firsts} s (goal <= 3 s), "
                    f"bare {bare_firsts} s; platform - bare mean {sum(firsts) / len(firsts):.2f} s"
                )
                print(f"(c) max |mAP50 diff| {max(f['map_diff'] for f in figures):.4f} (goal <= 0.02)")
        finally:
            watcher.stop.set()
            stack.down()


if __name__ == "__main__":
    main()
