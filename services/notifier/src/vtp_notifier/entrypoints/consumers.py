"""The notifier's Kafka subscriber: every public topic, in batches, into the feed."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from vtp_notifier.domain.feed import FEED_TOPICS
from vtp_notifier.service_layer.ingest import FeedIngest
from vtp_runtime.messaging.consumer import subscribe_batch

CONSUMER = "notifier"
FETCH_MAX_WAIT_MS = 20  # a live feed: ask the broker often rather than wait for a full fetch


def register(broker: KafkaBroker, ingest: FeedIngest) -> None:
    """One consumer group for all replicas: each event is stored once, then fanned out to all."""
    subscribe_batch(broker, FEED_TOPICS, CONSUMER, ingest, fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
