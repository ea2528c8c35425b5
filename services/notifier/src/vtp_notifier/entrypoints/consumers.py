"""The notifier's Kafka subscriber: every public topic, in batches, into the feed."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from vtp_notifier.domain.feed import FEED_TOPICS
from vtp_notifier.service_layer.ingest import FeedIngest
from vtp_notifier.settings import FeedSettings
from vtp_runtime.messaging.consumer import subscribe_batch
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.poll_pace import Pace, PollPace

CONSUMER = "notifier"


def register(broker: KafkaBroker, ingest: FeedIngest, settings: FeedSettings, dead_letters: DeadLetters) -> PollPace:
    """One consumer group for all replicas: each event is stored once, then fanned out to all.

    A live feed polls often: the broker may hold a fetch `feed_fetch_max_wait_ms`, and after an
    empty poll faststream pauses for the batch timeout; both add straight to publish -> screen latency.
    Polling that often costs CPU even when nothing happens, so after `feed_idle_after_seconds`
    without an event the subscriber slows to the idle pace until the next one arrives. Run the
    returned pace's `run` as a background task.
    """
    busy = Pace(settings.feed_fetch_max_wait_ms, settings.feed_poll_pause_ms)
    idle = Pace(
        max(settings.feed_fetch_max_wait_ms, settings.feed_idle_fetch_max_wait_ms),
        max(settings.feed_poll_pause_ms, settings.feed_idle_poll_pause_ms),
    )
    pace = PollPace(busy, idle, settings.feed_idle_after_seconds)
    subscriber = subscribe_batch(
        broker,
        FEED_TOPICS,
        CONSUMER,
        pace.track(ingest),
        dead_letters,
        fetch_max_wait_ms=busy.fetch_max_wait_ms,
        batch_timeout_ms=busy.pause_ms,
    )
    pace.attach(subscriber)
    return pace
