"""The notifier's Kafka subscriber: every public topic, in batches, into the feed."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from vtp_notifier.domain.feed import FEED_TOPICS
from vtp_notifier.service_layer.ingest import FeedIngest
from vtp_runtime.messaging.consumer import subscribe_batch

CONSUMER = "notifier"
# A live feed asks often: the broker may hold a fetch this long, and after an empty poll faststream
# sleeps for the batch timeout before polling again; both add straight to publish -> screen latency.
FETCH_MAX_WAIT_MS = 10
BATCH_TIMEOUT_MS = 5


def register(broker: KafkaBroker, ingest: FeedIngest) -> None:
    """One consumer group for all replicas: each event is stored once, then fanned out to all."""
    subscribe_batch(
        broker, FEED_TOPICS, CONSUMER, ingest, fetch_max_wait_ms=FETCH_MAX_WAIT_MS, batch_timeout_ms=BATCH_TIMEOUT_MS
    )
