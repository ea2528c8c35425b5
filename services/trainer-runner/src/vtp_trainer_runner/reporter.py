"""Publishes one attempt's events straight to Kafka (the runner keeps no database).

Delivery is at least once: a failed publish is retried with backoff, and every
consumer deduplicates by event id, so a retry that did reach the broker is harmless.
"""

from __future__ import annotations

import asyncio
import logging

from vtp_contracts import EventData, TopicSpec
from vtp_runtime.messaging.cloudevents import make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher, PublishError

SOURCE = "trainer-runner"
_log = logging.getLogger(__name__)


class Reporter:
    def __init__(self, publisher: KafkaEventPublisher, attempts: int = 8) -> None:
        self._publisher = publisher
        self._attempts = attempts

    async def emit(self, spec: TopicSpec, data: EventData) -> None:
        event = make_event(spec, data, SOURCE)  # one id for every retry of this event
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            try:
                await self._publisher.publish([event])
                return
            except PublishError as exc:
                if attempt == self._attempts:
                    raise
                _log.warning("publishing %s failed (%s); retry %d in %.1fs", spec.topic, exc, attempt, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
