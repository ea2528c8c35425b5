"""Every replica reads every `deployment.changed.v1` (no consumer group) and forgets that deployment.

Evicting is idempotent, so duplicates and redeliveries are harmless; a replica that restarts
starts with an empty cache, so it reads from the end of the topic.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

from vtp_contracts.catalog import DEPLOYMENT_CHANGED
from vtp_inference.adapters.model_cache import ModelCache
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event

_log = logging.getLogger(__name__)


def change_watcher(bootstrap: str, cache: ModelCache, client_id: str):  # type: ignore[no-untyped-def]
    async def run(stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            DEPLOYMENT_CHANGED.topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            client_id=client_id,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        try:
                            event = decode_event(DEPLOYMENT_CHANGED, record.headers, record.value or b"")
                        except MalformedEvent as exc:  # nothing to evict; the producer's bug, logged
                            _log.warning("malformed deployment.changed at offset %s: %s", record.offset, exc)
                            continue
                        cache.evict(event.data.deployment_id)
        finally:
            await consumer.stop()

    return run
