"""`make demo`: walk through the running platform from a user's side.

Today it shows the foundation: the stack's health, a new project with its own
token, and that a token only ever sees its own project. The training journey
(dataset upload, a CPU training job with live epochs) joins it with the
datasets and training features.
"""

from __future__ import annotations

import sys
import uuid

import httpx

from vtp_localstack.config import StackConfig


def main() -> int:
    cfg = StackConfig()
    admin_token = (cfg.run_path / "admin-token").read_text().strip()
    with httpx.Client(base_url=cfg.gateway_url, timeout=10) as api:
        health = api.get("/api/v1/health").json()
        print(f"platform health: {health['status']}")
        for name, service in sorted(health["services"].items()):
            checks = ", ".join(f"{dep} {r['status']}" for dep, r in service.get("checks", {}).items())
            print(f"  {name:<15} {service['status']:<5} {checks}")

        anonymous = api.get("/api/v1/jobs")
        print(f"\nGET /api/v1/jobs without a token -> {anonymous.status_code} {anonymous.json()['code']}")

        admin = {"Authorization": f"Bearer {admin_token}"}
        project = api.post("/api/v1/projects", json={"name": f"Demo {uuid.uuid4().hex[:6]}"}, headers=admin).json()
        print(f"created project {project['slug']} ({project['id']})")
        issued = api.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "demo"}, headers=admin).json()
        print(f"issued token {issued['prefix']}... (the secret is shown once; only its SHA-256 is stored)")
        mine = {"Authorization": f"Bearer {issued['token']}"}
        visible = [p["slug"] for p in api.get("/api/v1/projects", headers=mine).json()]
        print(f"projects visible to the new token: {visible}")
        if health["status"] != "ok" or visible != [project["slug"]]:
            return 1
    print(f"\nGateway: {cfg.gateway_url}   Kafka: {cfg.kafka_bootstrap}   admin token: {cfg.run_path / 'admin-token'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
