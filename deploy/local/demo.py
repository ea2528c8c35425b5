"""`make demo`: walk through the running platform from a user's side.

The stack's health; a new project with its own token (which sees only its project); a generated
sample dataset uploaded, validated and frozen in a snapshot; a short CPU training job on it, its
epochs printed live from the notifier's WebSocket feed as the runner reports them, and the result table.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from websockets.sync.client import connect

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.config import StackConfig


def _health(api: httpx.Client, admin: dict[str, str]) -> bool:
    print(f"platform health without a token: {api.get('/api/v1/health').json()}")
    health = api.get("/api/v1/health", headers=admin).json()  # the detail is for admins only
    print(f"platform health: {health['status']}")
    for name, service in sorted(health["services"].items()):
        checks = ", ".join(f"{dep} {r['status']}" for dep, r in service.get("checks", {}).items())
        print(f"  {name:<15} {service['status']:<5} {checks}")
    return bool(health["status"] == "ok")


def _project(api: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    anonymous = api.get("/api/v1/jobs")
    print(f"\nGET /api/v1/jobs without a token -> {anonymous.status_code} {anonymous.json()['code']}")
    project = api.post("/api/v1/projects", json={"name": f"Demo {uuid.uuid4().hex[:6]}"}, headers=admin).json()
    print(f"created project {project['slug']} ({project['id']})")
    issued = api.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "demo"}, headers=admin).json()
    print(f"issued token {issued['prefix']}... (shown once; only its SHA-256 is stored)")
    mine = {"Authorization": f"Bearer {issued['token']}"}
    visible = [p["slug"] for p in api.get("/api/v1/projects", headers=mine).json()]
    print(f"projects visible to the new token: {visible}")
    return mine


def _dataset(api: httpx.Client, auth: dict[str, str]) -> str | None:
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "shapes", images=200, seed=0)
        data = zip_dataset(root, Path(tmp) / "shapes.zip").read_bytes()
    print(f"\nuploading a generated DICE dataset: 200 images, {len(data) / 1e6:.1f} MB")
    response = api.post(
        "/api/v1/datasets",
        data={"name": "demo shapes"},
        headers=auth,
        files={"file": ("shapes.zip", data, "application/zip")},
        timeout=120,
    )
    if response.status_code != 201:
        print(response.text)
        return None
    dataset = response.json()
    for task, summary in dataset["tasks"].items():
        classes = ", ".join(f"{c['name']} {c['annotation_count']}" for c in summary["classes"])
        print(f"  {task:<15} {summary['annotation_count']:>4} annotations ({classes})")
    print(f"  splits {dataset['split_counts']}, content hash {dataset['content_hash'][:16]}...")
    snapshot = api.post(f"/api/v1/datasets/{dataset['id']}/snapshots", headers=auth).json()
    print(f"snapshot {snapshot['version_tag']} ({snapshot['id']}) pinned; published dataset.snapshot-created.v1")
    return str(dataset["id"])


def _train(api: httpx.Client, auth: dict[str, str], dataset_id: str, epochs: int = 15) -> bool:
    config = {"epochs": epochs, "imgsz": 128, "batch": 16, "workers": 0, "seed": 0}
    response = api.post(
        "/api/v1/jobs",
        headers=auth,
        json={
            "name": "demo detector",
            "task_type": "detect",
            "model": "yolo11n",
            "dataset_id": dataset_id,
            "config": config,
        },
    )
    if response.status_code != 201:
        print(response.text)
        return False
    job = response.json()
    print(f"\ntraining job {job['id']}: yolo11n from its yaml, {epochs} epochs on the CPU")
    print(f"  watching the live feed: {_feed_url(api, job['id'])}")
    _watch(api, auth, job["id"])
    deadline = time.monotonic() + 30  # the feed can be a moment ahead of the jobs service's projection
    while True:
        job = api.get(f"/api/v1/jobs/{job['id']}", headers=auth).json()
        if job["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print(f"\njob {job['status']} (attempt {job['attempt']}, runner {job['runner_id']})")
    if job["error"]:
        print(f"  error {job['error']}")
    best = job["best_metrics"]
    print(f"  best epoch {job['best_epoch']}: mAP50 {best.get('mAP50', 0):.3f}, mAP50-95 {best.get('mAP50-95', 0):.3f}")
    for kind, checkpoint in sorted(job["checkpoints"].items()):
        size = checkpoint["size_bytes"] / 1e6
        print(f"  {kind:<4} checkpoint {checkpoint['uri']} ({size:.1f} MB, epoch {checkpoint['epoch']})")
    return bool(job["status"] == "completed")


def _feed_url(api: httpx.Client, job_id: str) -> str:
    base = str(api.base_url).rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return f"{base}/api/v1/ws?jobs={job_id}&types=progress,metrics,job_status,error"


def _watch(api: httpx.Client, auth: dict[str, str], job_id: str) -> None:
    """Print each epoch as the notifier pushes it (history first, so nothing before connecting is lost)."""
    ticket = api.post("/api/v1/ws/tickets", headers=auth).json()["ticket"]  # what a browser would do
    print(f"  {'epoch':>5} {'box_loss':>9} {'mAP50':>7} {'mAP50-95':>9} {'ETA s':>6}")
    eta = "-"
    with connect(f"{_feed_url(api, job_id)}&ticket={ticket}", open_timeout=15) as feed:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                message = json.loads(feed.recv(timeout=max(1.0, deadline - time.monotonic())))
            except TimeoutError:
                break
            kind, data = message["type"], message.get("data", {})
            if kind == "progress":  # sent just before the same epoch's metrics
                eta = f"{data['eta_seconds']:.0f}" if data.get("eta_seconds") is not None else "-"
            elif kind == "metrics":
                val, loss = data["val_metrics"], data["train_losses"]
                print(
                    f"  {data['epoch']:>5} {loss.get('box_loss', 0):>9.3f} {val.get('mAP50', 0):>7.3f} "
                    f"{val.get('mAP50-95', 0):>9.3f} {eta:>6}"
                )
            elif kind == "error" or (kind == "job_status" and data["status"] in ("completed", "cancelled")):
                break


def main() -> int:
    cfg = StackConfig()
    admin = {"Authorization": f"Bearer {(cfg.run_path / 'admin-token').read_text().strip()}"}
    with httpx.Client(base_url=cfg.gateway_url, timeout=30) as api:
        ok = _health(api, admin)
        mine = _project(api, admin)
        dataset_id = _dataset(api, mine)
        ok = dataset_id is not None and _train(api, mine, dataset_id) and ok
    print(f"\nGateway: {cfg.gateway_url}   Kafka: {cfg.kafka_bootstrap}   admin token: {cfg.run_path / 'admin-token'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
