"""How events become WebSocket messages, and what a filter lets through."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from vtp_notifier.domain.feed import FEED_TOPICS, MESSAGE_TYPES, FeedEvent, FeedFilter

PROJECT, JOB = uuid.uuid4(), uuid.uuid4()


def feed_event(topic: str, data: dict[str, Any], job: uuid.UUID | None = JOB) -> FeedEvent:
    return FeedEvent(1, "e1", topic, PROJECT, str(job), job, datetime.now(UTC), data)


def kinds(topic: str, data: dict[str, Any]) -> list[str]:
    return [m["type"] for m in feed_event(topic, data).messages()]


def test_each_topic_maps_to_documented_types() -> None:
    assert kinds("epoch.progress.v1", {"epoch": 1}) == ["progress", "metrics"]
    assert kinds("job.lifecycle.v1", {"status": "started"}) == ["job_status"]
    assert kinds("job.lifecycle.v1", {"status": "failed"}) == ["error"]
    assert kinds("job.requested.v1", {"resume_from": None}) == ["job_status"]
    assert kinds("job.cancel-requested.v1", {}) == ["job_status"]
    assert kinds("checkpoint.saved.v1", {}) == ["checkpoint"]
    assert kinds("job.log.v1", {}) == ["log"]
    assert kinds("export.completed.v1", {}) == ["export"]
    assert kinds("deployment.changed.v1", {}) == ["deployment"]
    for spec in FEED_TOPICS:
        assert set(kinds(spec.topic, {})) <= set(MESSAGE_TYPES)


def test_message_shape() -> None:
    message = feed_event("job.requested.v1", {"name": "n", "resume_from": {"epoch": 4}}).messages()[0]
    assert set(message) == {"type", "event_id", "seq", "time", "subject", "data"}
    assert message["data"]["status"] == "queued" and message["data"]["resumed_from_epoch"] == 4


def test_filter_by_project_job_and_type() -> None:
    event = feed_event("epoch.progress.v1", {"epoch": 1})
    assert FeedFilter(PROJECT).wants_event(event)
    assert not FeedFilter(uuid.uuid4()).wants_event(event)
    assert not FeedFilter(PROJECT, frozenset({uuid.uuid4()})).wants_event(event)
    only_metrics = FeedFilter(PROJECT, frozenset({JOB}), frozenset({"metrics"}))
    assert [m["type"] for m in only_metrics.select(event.messages())] == ["metrics"]
