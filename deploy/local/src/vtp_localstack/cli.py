"""``vtp-stack up|down|status``: the commands behind ``make up``, ``make down``, ``make status``."""

from __future__ import annotations

import argparse
import sys
import time

from vtp_localstack.config import StackConfig
from vtp_localstack.stack import LocalStack


def _up(stack: LocalStack) -> int:
    began = time.monotonic()
    try:
        started = stack.up()
    except (TimeoutError, RuntimeError) as exc:
        print(f"stack did not come up: {exc}", file=sys.stderr)
        print(f"logs: {stack.table.log_dir}", file=sys.stderr)
        return 1
    what = ", ".join(started) if started else "nothing (all running)"
    print(f"started {what} in {time.monotonic() - began:.1f}s")
    return _status(stack)


def _down(stack: LocalStack) -> int:
    stopped = stack.down()
    print("stopped " + (", ".join(stopped) if stopped else "nothing (none running)"))
    return 0


def _status(stack: LocalStack) -> int:
    cfg = stack.cfg
    health = stack.platform_health() or {}
    services = health.get("services", {})
    dependencies = health.get("dependencies", {})
    print(f"\n{'COMPONENT':<16}{'PID':>8}  {'HEALTH':<8}ADDRESS")
    for comp in stack.components():
        state = services.get(comp.name, {}).get("status") or dependencies.get(comp.name, {}).get("status")
        if state is None:
            state = "running" if comp.pid else "stopped"
        print(f"{comp.name:<16}{comp.pid or '-':>8}  {state:<8}{comp.url}")
    print(f"\nplatform health: {health.get('status', 'unreachable')}")
    for dep, result in sorted(dependencies.items()):
        print(f"  {dep:<10} {result['status']:<6} (checked by {', '.join(result['checked_by'])})")
    token_file = cfg.run_path / "admin-token"
    print("\nEndpoints")
    print(f"  gateway           {cfg.gateway_url}  (REST under /api/v1, WebSocket /api/v1/ws)")
    print(f"  health            {cfg.gateway_url}/api/v1/health")
    print(f"  API docs          {cfg.gateway_url}/api/docs  (OpenAPI: /api/v1/openapi.json, token needed)")
    print(f"  inference gRPC    {cfg.host}:{cfg.inference_grpc_port}  (Open Inference Protocol, tritonclient.grpc)")
    print(f"  kafka bootstrap   {cfg.kafka_bootstrap}")
    print(f"  postgres          {cfg.postgres_admin_url}")
    print(f"  redis             {cfg.redis_url}")
    local_objects = cfg.run_path / "data" / "objects"
    storage = f"s3://{cfg.s3_endpoint}/{cfg.storage_bucket}" if cfg.s3_endpoint else str(local_objects)
    print(f"  object storage    {storage}")
    print(f'  admin token       {token_file}  (curl -H "Authorization: Bearer $(cat {token_file})" ...)')
    print(f"  logs              {stack.table.log_dir}")
    return 0 if health.get("status") == "ok" else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="vtp-stack", description="Run the platform locally without Docker.")
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    stack = LocalStack(StackConfig())
    sys.exit({"up": _up, "down": _down, "status": _status}[args.command](stack))


if __name__ == "__main__":
    main()
