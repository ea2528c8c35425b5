"""Builds a service's infrastructure adapters from its settings (composition helper).

A service's composition root asks for the parts it uses (database, Kafka,
Redis, object storage) and gets their adapters, health checks and lifecycle
hooks wired into :class:`AppParts`, so each service's ``bootstrap`` stays short.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import redis.asyncio as aioredis
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vtp_contracts import CATALOG
from vtp_runtime.auth import CachingVerifier, RemoteTokenVerifier, TokenVerifier
from vtp_runtime.db.engine import make_engine, make_session_factory, ping
from vtp_runtime.db.migrations import upgrade_to_head
from vtp_runtime.db.outbox import OutboxRelay
from vtp_runtime.db.retention import delivery_table_pruner
from vtp_runtime.db.unit_of_work import SqlUnitOfWork
from vtp_runtime.health import HealthCheck
from vtp_runtime.http.app import AppParts, Hook
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.kafka import KafkaEventPublisher, ensure_topics
from vtp_runtime.settings import ServiceSettings
from vtp_runtime.storage import ObjectStore, store_from_settings
from vtp_runtime.supervision import Background

_log = logging.getLogger(__name__)
STARTUP_RETRY_SECONDS = 30.0


async def _retrying(what: str, hook: Hook) -> None:
    """Run a start-up step, retrying while a dependency is still coming up."""
    deadline = asyncio.get_running_loop().time() + STARTUP_RETRY_SECONDS
    delay = 0.25
    while True:
        try:
            await hook()
            return
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            _log.warning("%s not ready (%s); retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class ServiceRuntime:
    """Adapters of one service process, created from its settings."""

    def __init__(self, settings: ServiceSettings, version: str, verifier: TokenVerifier | None = None) -> None:
        self.settings = settings
        remote: RemoteTokenVerifier | None = None
        if verifier is None:
            remote = RemoteTokenVerifier(settings.identity_url)
            verifier = CachingVerifier(remote, settings.token_cache_seconds)
        self.parts = AppParts(service=settings.service_name, version=version, verifier=verifier)
        self.checks: list[HealthCheck] = []
        self.parts.checks = self.checks
        self.engine: AsyncEngine | None = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.broker: KafkaBroker | None = None
        self._dead_letters: DeadLetters | None = None
        self.publisher: KafkaEventPublisher | None = None
        self.relay: OutboxRelay | None = None
        self.redis: aioredis.Redis | None = None
        self.store: ObjectStore | None = None
        if remote is not None:
            self.parts.on_shutdown.append(remote.aclose)

    def use_database(self, migrations: Path) -> async_sessionmaker[AsyncSession]:
        """PostgreSQL with this service's migrations applied at start-up."""
        url = self.settings.database_url
        if not url:
            raise RuntimeError(f"{self.settings.service_name} needs VTP_DATABASE_URL")
        engine = make_engine(url)
        self.engine, self.sessions = engine, make_session_factory(engine)
        self.parts.on_startup.append(lambda: _retrying("postgres", lambda: upgrade_to_head(url, migrations)))
        self.parts.on_shutdown.append(engine.dispose)
        self.checks.append(HealthCheck("postgres", lambda: ping(engine)))
        self.parts.background.append(
            delivery_table_pruner(
                engine,
                timedelta(hours=self.settings.outbox_retention_hours),
                timedelta(hours=self.settings.processed_events_retention_hours),
            )
        )
        return self.sessions

    def use_kafka(self) -> KafkaBroker:
        """A faststream broker for subscribers, and a producer for their dead letters (`self.dead_letters`).

        Topics of the catalog and their dead-letter topics are created if missing.
        """
        s = self.settings
        broker = KafkaBroker(s.kafka_bootstrap_servers, client_id=s.service_name, logger=_log)
        self.broker = broker
        dlq = KafkaEventPublisher(s.kafka_bootstrap_servers, client_id=f"{s.service_name}-dlq")
        self._dead_letters = DeadLetters(dlq, max_tries=s.consumer_max_tries)

        async def topics() -> None:
            await ensure_topics(s.kafka_bootstrap_servers, CATALOG, s.kafka_topic_partitions)

        self.parts.on_startup.append(lambda: _retrying("kafka", topics))
        self.parts.on_startup.append(lambda: _retrying("kafka dead-letter producer", dlq.start))
        self.parts.on_startup.append(broker.start)
        self.parts.on_shutdown.append(dlq.stop)  # hooks run in reverse: after the consumers stopped
        self.parts.on_shutdown.append(broker.stop)
        self.checks.append(HealthCheck("kafka", lambda: _ping_broker(broker)))
        self.checks.append(HealthCheck("consumers", lambda: _consumers_running(broker)))
        return broker

    @property
    def dead_letters(self) -> DeadLetters:
        """Where this service's consumers put events they cannot parse or apply."""
        if self._dead_letters is None:
            raise RuntimeError("use_kafka() first")
        return self._dead_letters

    def use_outbox(self) -> OutboxRelay:
        """A producer and the relay that drains this service's outbox into Kafka."""
        if self.engine is None or self.broker is None:
            raise RuntimeError("use_database() and use_kafka() come before use_outbox()")
        s = self.settings
        publisher = KafkaEventPublisher(
            s.kafka_bootstrap_servers, idempotent=s.kafka_idempotent_producer, client_id=s.service_name
        )
        relay = OutboxRelay(
            self.engine, publisher, poll_seconds=s.outbox_poll_seconds, idle_poll_seconds=s.outbox_idle_poll_seconds
        )
        self.publisher, self.relay = publisher, relay
        self.parts.on_startup.append(lambda: _retrying("kafka producer", publisher.start))
        self.parts.on_shutdown.append(publisher.stop)
        if s.outbox_relay_enabled:
            self.parts.background.append(Background("outbox relay", relay.run))
        return relay

    def unit_of_work(self) -> SqlUnitOfWork:
        """A new unit of work on this service's database (its events go through the outbox)."""
        if self.sessions is None:
            raise RuntimeError("use_database() first")
        return SqlUnitOfWork(self.sessions, self.settings.service_name, self.relay)

    def use_redis(self) -> aioredis.Redis:
        url = self.settings.redis_url
        if not url:
            raise RuntimeError(f"{self.settings.service_name} needs VTP_REDIS_URL")
        client = aioredis.from_url(url)
        self.redis = client
        self.parts.on_shutdown.append(client.aclose)
        self.checks.append(HealthCheck("redis", client.ping))
        return client

    def use_storage(self) -> ObjectStore:
        store = store_from_settings(self.settings)
        self.store = store
        self.checks.append(HealthCheck("storage", store.check))
        return store


async def _consumers_running(broker: KafkaBroker) -> None:
    """Every subscriber is running and has a live consume loop (faststream restarts a crashed one)."""
    stopped = [
        ", ".join(getattr(s, "topic_names", ["?"]))
        for s in broker.subscribers
        if not getattr(s, "running", False) or all(task.done() for task in getattr(s, "tasks", ()))
    ]
    if stopped:
        raise RuntimeError(f"consumers stopped: {'; '.join(stopped)}")


async def _ping_broker(broker: KafkaBroker) -> None:
    if not await broker.ping(timeout=2.0):
        raise ConnectionError("Kafka broker did not answer")
