"""`make demo`: walk through the running platform from a user's side.

It shows the stack's health, a new project with its own token (which sees only its project), and a
generated sample dataset uploaded, validated and frozen in a snapshot. The training journey joins it
with the training feature.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

import httpx

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.config import StackConfig


def _health(api: httpx.Client) -> bool:
    health = api.get("/api/v1/health").json()
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


def _dataset(api: httpx.Client, auth: dict[str, str]) -> bool:
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
        return False
    dataset = response.json()
    for task, summary in dataset["tasks"].items():
        classes = ", ".join(f"{c['name']} {c['annotation_count']}" for c in summary["classes"])
        print(f"  {task:<15} {summary['annotation_count']:>4} annotations ({classes})")
    print(f"  splits {dataset['split_counts']}, content hash {dataset['content_hash'][:16]}...")
    snapshot = api.post(f"/api/v1/datasets/{dataset['id']}/snapshots", headers=auth).json()
    print(f"snapshot {snapshot['version_tag']} ({snapshot['id']}) pinned; published dataset.snapshot-created.v1")
    return True


def main() -> int:
    cfg = StackConfig()
    admin = {"Authorization": f"Bearer {(cfg.run_path / 'admin-token').read_text().strip()}"}
    with httpx.Client(base_url=cfg.gateway_url, timeout=30) as api:
        ok = _health(api)
        mine = _project(api, admin)
        ok = _dataset(api, mine) and ok
    print(f"\nGateway: {cfg.gateway_url}   Kafka: {cfg.kafka_bootstrap}   admin token: {cfg.run_path / 'admin-token'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
