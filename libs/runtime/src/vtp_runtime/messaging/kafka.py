"""Kafka adapter: a producer for CloudEvents and topic provisioning.

aiokafka's exceptions stop here and leave as :class:`PublishError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from vtp_contracts import TopicSpec
from vtp_runtime.messaging.cloudevents import OutboundEvent, kafka_headers
from vtp_runtime.messaging.dead_letter import dead_letter_topic

_log = logging.getLogger(__name__)


class PublishError(Exception):
    """An event could not be handed to Kafka."""


class KafkaEventPublisher:
    """Publishes OutboundEvents; waits for the broker's acknowledgement (acks=all)."""

    def __init__(self, bootstrap_servers: str, *, idempotent: bool = False, client_id: str = "vtp") -> None:
        self._options = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "enable_idempotence": idempotent,
        }
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the producer is made here, not in __init__.
        producer = AIOKafkaProducer(acks="all", linger_ms=2, **self._options)
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise PublishError(f"cannot connect to Kafka: {exc}") from exc
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, events: Sequence[OutboundEvent]) -> None:
        """Send a batch in order and wait until the broker has every one.

        All sends are queued before any is awaited; a single producer keeps the
        order of records within a partition, which is all the ordering we promise.
        """
        if self._producer is None:
            raise PublishError("publisher is not started")
        try:
            futures = [
                await self._producer.send(e.topic, e.value, key=e.key.encode(), headers=kafka_headers(e.headers))
                for e in events
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise PublishError(f"publish failed: {exc}") from exc

    async def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send one record exactly as given (dead letters, replays) and wait for the broker's ack."""
        if self._producer is None:
            raise PublishError("publisher is not started")
        try:
            await (await self._producer.send(topic, value, key=key, headers=headers))
        except KafkaError as exc:
            raise PublishError(f"publish to {topic} failed: {exc}") from exc


async def ensure_topics(bootstrap_servers: str, specs: Iterable[TopicSpec], partitions: int = 6) -> list[str]:
    """Create the catalog's topics and their dead-letter topics that do not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="vtp-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [name for s in specs for name in (s.topic, dead_letter_topic(s.topic))]
        wanted = [name for name in names if name not in existing]
        if not wanted:
            return []
        try:
            await admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in wanted])
        except TopicAlreadyExistsError:
            _log.info("topics created concurrently by another process")
        return wanted
    except KafkaError as exc:
        raise PublishError(f"cannot provision topics: {exc}") from exc
    finally:
        await admin.close()
