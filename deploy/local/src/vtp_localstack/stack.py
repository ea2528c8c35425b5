"""``up``, ``down`` and ``status`` of the whole local stack. Idempotent by design.

``up`` starts only what is not running (a crashed service is restarted, healthy
ones are left alone), then waits until the gateway reports every service ok.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from vtp_contracts import CATALOG
from vtp_gateway.caddyfile import render
from vtp_gateway.routes import SERVICE_ROUTES
from vtp_localstack import infra, triton
from vtp_localstack.config import StackConfig, database_name
from vtp_localstack.processes import ProcessSpec, ProcessTable, port_open, wait_until
from vtp_localstack.services import (
    SERVICE_NEEDS,
    SERVICES,
    gateway_app_spec,
    relay_spec,
    replica_specs,
    service_spec,
)
from vtp_runtime.messaging.kafka import ensure_topics

UP_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class ComponentState:
    name: str
    pid: int | None
    url: str


class LocalStack:
    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.table = ProcessTable(cfg.run_path)

    # -- up -------------------------------------------------------------------------------
    def up(self, services: tuple[str, ...] = SERVICES, gateway: bool = True) -> list[str]:
        """Start whatever is missing; returns the names of the processes started."""
        self.cfg.run_path.mkdir(parents=True, exist_ok=True)
        started = self._ensure(self.infra_specs(services))
        self._prepare_infra(services)
        specs = [spec for name in services for spec in (service_spec(self.cfg, name), *replica_specs(self.cfg, name))]
        relays = [relay_spec(self.cfg, name) for name in self.cfg.standalone_relays if name in services]
        if gateway:
            specs.append(gateway_app_spec(self.cfg, services))
        started += self._ensure(specs, health=True)
        started += self._ensure(relays)
        if gateway:
            started += self._ensure_proxy(services)
            wait_until(self.gateway_healthy, UP_TIMEOUT_SECONDS, "gateway /api/v1/health", interval=0.3)
        return started

    def infra_specs(self, services: tuple[str, ...]) -> list[ProcessSpec]:
        needs = set().union(*(SERVICE_NEEDS[s] for s in services)) if services else {"kafka", "postgres", "redis"}
        specs = []
        if "kafka" in needs and not self.cfg.external_kafka_bootstrap:
            specs.append(infra.kafka_spec(self.cfg))
        if "postgres" in needs and not self.cfg.external_postgres_url:
            specs.append(infra.postgres_spec(self.cfg))
        if "redis" in needs and not self.cfg.external_redis_url:
            specs.append(infra.redis_spec(self.cfg))
        if "inference" in services and triton.available(self.cfg):  # optional: only once fetched
            specs.append(triton.triton_spec(self.cfg))
        return specs

    def _ensure(self, specs: list[ProcessSpec], health: bool = False) -> list[str]:
        started = []
        for spec in specs:
            if self.table.find(spec.name) is None:
                self.table.start(spec)
                started.append(spec.name)
        # Wait for all at once: the processes boot in parallel.
        with concurrent.futures.ThreadPoolExecutor(max(1, len(specs))) as pool:
            list(pool.map(lambda s: self._wait_ready(s, health), specs))
        return started

    def _wait_ready(self, spec: ProcessSpec, health: bool) -> None:
        def ready() -> bool:
            if self.table.find(spec.name) is None:
                log = self.table.log_path(spec.name)
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{spec.name} exited during start-up; log tail:\n{tail}")
            if spec.port is None:
                return True  # no port to wait for (a standalone outbox relay): running is ready
            if not port_open(self.cfg.host, spec.port):
                return False
            return not health or _http_ok(f"http://{self.cfg.host}:{spec.port}/health")

        wait_until(ready, UP_TIMEOUT_SECONDS, spec.name)

    def _prepare_infra(self, services: tuple[str, ...]) -> None:
        """Service databases and Kafka topics, created once, before services race for them."""
        dbs = [database_name(s) for s in services if "postgres" in SERVICE_NEEDS[s]]
        asyncio.run(self._prepare(dbs, any("kafka" in SERVICE_NEEDS[s] for s in services)))

    async def _prepare(self, dbs: list[str], kafka: bool) -> None:
        if dbs:
            conn = await _connect_retrying(self.cfg.postgres_admin_url)
            try:
                existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
                for db in dbs:
                    if db not in existing:
                        await conn.execute(f'CREATE DATABASE "{db}"')
            finally:
                await conn.close()
        if kafka:
            await ensure_topics(self.cfg.kafka_bootstrap, CATALOG, self.cfg.kafka_topic_partitions)

    def _ensure_proxy(self, services: tuple[str, ...]) -> list[str]:
        caddyfile = self.cfg.run_path / "Caddyfile"
        host, routed = self.cfg.host, [s for s in services if s in SERVICE_ROUTES]
        hosts = {s: [f"{host}:{port}" for port in self.cfg.replica_ports(s)] for s in routed}
        upstreams = {s: found[0] if len(found) == 1 else found for s, found in hosts.items()}
        text = render(
            f"{self.cfg.host}:{self.cfg.gateway_port}", upstreams, f"{self.cfg.host}:{self.cfg.service_port('gateway')}"
        )
        if not caddyfile.exists() or caddyfile.read_text() != text:
            caddyfile.write_text(text)
            self.table.stop("gateway-proxy")  # a changed route table needs a fresh proxy
        return self._ensure([infra.caddy_spec(self.cfg, caddyfile)])

    # -- down / status ----------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every process of this run directory: services first, infrastructure last."""
        infrastructure = ["redis", "kafka", "postgres"]
        order = ["gateway-proxy", "gateway", *SERVICES]
        names = order + [n for n in self.table.names() if n not in order + infrastructure] + infrastructure
        return [n for n in names if self.table.stop(n)]

    def gateway_healthy(self) -> bool:
        return _http_ok(f"{self.cfg.gateway_url}/api/v1/health")

    def platform_health(self) -> dict[str, Any] | None:
        """The gateway's health report, in detail when the admin token is at hand (else status only)."""
        try:
            token = (self.cfg.run_path / "admin-token").read_text().strip()
        except OSError:  # not written yet, or not ours to read
            token = ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            url = f"{self.cfg.gateway_url}/api/v1/health"
            body: dict[str, Any] = httpx.get(url, headers=headers, timeout=10).json()
            return body
        except (httpx.HTTPError, ValueError):
            return None

    def components(self) -> list[ComponentState]:
        cfg = self.cfg
        urls = {
            "kafka": cfg.kafka_bootstrap,
            "postgres": cfg.postgres_admin_url,
            "redis": cfg.redis_url,
            "gateway-proxy": cfg.gateway_url,
            "gateway": cfg.service_url("gateway"),
        }
        urls.update({s: cfg.service_url(s) for s in SERVICES})
        urls.update({spec.name: f"http://{cfg.host}:{spec.port}" for s in SERVICES for spec in replica_specs(cfg, s)})
        if triton.available(cfg):
            urls["triton"] = f"http://{cfg.host}:{cfg.triton_port}"
        out = []
        for name, url in urls.items():
            proc = self.table.find(name)
            out.append(ComponentState(name, proc.pid if proc else None, url))
        return out


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


async def _connect_retrying(url: str) -> asyncpg.Connection:
    deadline = time.monotonic() + 30
    while True:
        try:
            return await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
