"""The notifier's Kafka subscriber: every public topic, in batches, into the feed."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from vtp_notifier.domain.feed import FEED_TOPICS
from vtp_notifier.service_layer.ingest import FeedIngest
from vtp_notifier.settings import FeedSettings
from vtp_runtime.messaging.consumer import subscribe_batch
from vtp_runtime.messaging.dead_letter import DeadLetters

CONSUMER = "notifier"


def register(broker: KafkaBroker, ingest: FeedIngest, settings: FeedSettings, dead_letters: DeadLetters) -> None:
    """One consumer group for all replicas: each event is stored once, then fanned out to all.

    A live feed polls often: the broker may hold a fetch `feed_fetch_max_wait_ms`, and after an
    empty poll faststream pauses for the batch timeout; both add straight to publish -> screen latency.
    """
    subscribe_batch(
        broker,
        FEED_TOPICS,
        CONSUMER,
        ingest,
        dead_letters,
        fetch_max_wait_ms=settings.feed_fetch_max_wait_ms,
        batch_timeout_ms=settings.feed_poll_pause_ms,
    )
