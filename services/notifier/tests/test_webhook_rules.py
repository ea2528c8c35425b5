"""Which events a subscription gets, when failed deliveries are tried again, and failure runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from vtp_notifier.adapters.delivery_queue import Claimed, FailureRun, Outcome
from vtp_notifier.domain.feed import FeedEvent
from vtp_notifier.domain.webhooks import (
    AttemptResult,
    DeliveryStatus,
    Subscription,
    excerpt,
    retry_delay,
    unknown_event_types,
)
from vtp_notifier.service_layer.dispatcher import failure_runs
from vtp_notifier.settings import WebhookSettings

PROJECT, JOB = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _sub(types: Iterable[str] = (), jobs: Iterable[uuid.UUID] = (), project: uuid.UUID = PROJECT) -> Subscription:
    url = "https://x.test"
    return Subscription(uuid.uuid4(), project, url, frozenset(types), frozenset(jobs), None, True, None, 0, NOW, NOW)


def _event(topic: str = "epoch.progress.v1", job: uuid.UUID | None = JOB, project: uuid.UUID = PROJECT):
    return FeedEvent(1, "e1", topic, project, "s", job, NOW, {})


def test_empty_filters_match_every_event_of_the_project_only():
    assert _sub().matches(_event()) and _sub().matches(_event("job.lifecycle.v1", job=None))
    assert not _sub().matches(_event(project=uuid.uuid4()))


def test_event_type_and_job_filters():
    only_epochs = _sub({"epoch.progress.v1"})
    assert only_epochs.matches(_event()) and not only_epochs.matches(_event("job.lifecycle.v1"))
    one_job = _sub(jobs={JOB})
    assert one_job.matches(_event()) and not one_job.matches(_event(job=uuid.uuid4()))
    assert not one_job.matches(_event("dataset.snapshot-created.v1", job=None))  # not about that job


def test_unknown_event_types_are_each_reported():
    problems = unknown_event_types(["epoch.progress.v1", "nope.v1", "job.heartbeat.v1"])
    assert [(p.pointer, p.code) for p in problems] == [
        ("#/body/event_types/1", "unknown_event_type"),
        ("#/body/event_types/2", "unknown_event_type"),  # heartbeats are not feed news
    ]


def test_retry_delays_follow_the_schedule_within_the_jitter():
    schedule = [0, 10, 60, 300, 900, 2400]
    for n, base in enumerate(schedule, start=1):
        delays = [retry_delay(schedule, n, 0.2) for _ in range(200)]
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
    assert retry_delay(schedule, 7, 0.2) is None  # the 6th try was the last
    assert retry_delay(schedule, 3, 0.2, lambda lo, hi: lo) == pytest.approx(48)
    assert retry_delay(schedule, 3, 0.2, lambda lo, hi: hi) == pytest.approx(72)
    assert retry_delay(schedule, 3, 0.0) == 60


def test_schedule_setting_is_checked():
    assert WebhookSettings(webhook_retry_schedule_seconds=[0, 1]).webhook_retry_schedule_seconds == [0, 1]
    with pytest.raises(ValueError):
        WebhookSettings(webhook_retry_schedule_seconds=[])
    with pytest.raises(ValueError):
        WebhookSettings(webhook_allowed_cidrs=["10.0.0.0/33"])


def test_attempt_success_is_2xx_only():
    def result(code: int | None, error: str | None = None) -> AttemptResult:
        return AttemptResult(NOW, 5, code, error)

    assert result(200).ok and result(204).ok
    assert not result(301).ok and not result(500).ok and not result(None, "timeout").ok
    assert excerpt(b"x" * 5000 + b"\xff") == "x" * 1024
    assert excerpt(b"ok \xff") == "ok \ufffd"


def _outcome(sub: uuid.UUID, ok: bool, finished_ms: int) -> Outcome:
    claimed = Claimed(uuid.uuid4(), sub, "e", "{}", 1, "https://x.test", b"")
    result = AttemptResult(NOW + timedelta(milliseconds=finished_ms), 0, 200 if ok else 500)
    return Outcome(claimed, result, DeliveryStatus.SUCCEEDED if ok else DeliveryStatus.PENDING, None)


def test_failure_runs_count_failures_after_the_last_success():
    a, b = uuid.uuid4(), uuid.uuid4()
    outcomes = [_outcome(a, False, 1), _outcome(a, True, 2), _outcome(a, False, 3), _outcome(b, False, 1)]
    outcomes += [_outcome(b, False, 5), _outcome(a, False, 9)]
    runs = {r.subscription_id: r for r in failure_runs(outcomes)}
    assert runs[a] == FailureRun(a, True, 2)
    assert runs[b] == FailureRun(b, False, 2)
