"""Platform events as the feed keeps them, and the WebSocket messages they become."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

from vtp_contracts.catalog import (
    BATCH_COMPLETED,
    BATCH_PROGRESS,
    BATCH_REQUESTED,
    CATALOG,
    CHECKPOINT_SAVED,
    DATASET_SNAPSHOT_CREATED,
    DEPLOYMENT_CHANGED,
    EPOCH_PROGRESS,
    EXPORT_COMPLETED,
    EXPORT_PROGRESS,
    EXPORT_REQUESTED,
    JOB_CANCEL_REQUESTED,
    JOB_HEARTBEAT,
    JOB_LIFECYCLE,
    JOB_LOG,
    JOB_REQUESTED,
    TopicSpec,
)

# Topics the feed and webhooks carry: all public ones but heartbeats, which are runner-to-jobs
# liveness, not news.
FEED_TOPICS: tuple[TopicSpec, ...] = tuple(spec for spec in CATALOG if spec is not JOB_HEARTBEAT)

MESSAGE_TYPES = (
    "job_status", "progress", "metrics", "checkpoint", "log", "error", "export", "deployment", "dataset", "batch"
)  # fmt: skip

_PROGRESS_FIELDS = (
    "job_id",
    "attempt",
    "epoch",
    "total_epochs",
    "phase",
    "epoch_seconds",
    "eta_seconds",
    "gpu_memory_mb",
)
_METRICS_FIELDS = ("job_id", "attempt", "epoch", "total_epochs", "train_losses", "val_metrics", "learning_rate")


@dataclass(frozen=True)
class FeedEvent:
    """One stored platform event; `seq` orders the feed (per job it follows the topic's order)."""

    seq: int
    event_id: str
    topic: str
    project_id: UUID
    subject: str
    job_id: UUID | None
    time: datetime
    data: dict[str, Any]

    def messages(self) -> list[dict[str, Any]]:
        """The WebSocket messages of this event, in the order they are sent."""
        return [self._message(kind, data) for kind, data in _render(self.topic, self.data)]

    @cached_property
    def wire(self) -> tuple[tuple[str, str], ...]:
        """(type, JSON text) of each message, rendered once however many clients get the event."""
        return tuple((m["type"], json.dumps(m)) for m in self.messages())

    def _message(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": kind,
            "event_id": self.event_id,
            "seq": self.seq,
            "time": self.time.isoformat(),
            "subject": self.subject,
            "data": data,
        }


def _render(topic: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Message types of one event: an epoch is both progress (bars) and metrics (charts)."""
    if topic == EPOCH_PROGRESS.topic:
        return [
            ("progress", {k: data.get(k) for k in _PROGRESS_FIELDS}),
            ("metrics", {k: data.get(k) for k in _METRICS_FIELDS}),
        ]
    if topic == JOB_LIFECYCLE.topic:
        return [("error" if data.get("status") == "failed" else "job_status", data)]
    if topic == JOB_REQUESTED.topic:
        return [("job_status", {**_job_request_summary(data), "status": "queued"})]
    if topic == JOB_CANCEL_REQUESTED.topic:
        return [("job_status", {**data, "status": "cancel_requested"})]
    kind = {
        CHECKPOINT_SAVED.topic: "checkpoint",
        JOB_LOG.topic: "log",
        EXPORT_REQUESTED.topic: "export",
        EXPORT_PROGRESS.topic: "export",
        EXPORT_COMPLETED.topic: "export",
        DEPLOYMENT_CHANGED.topic: "deployment",
        DATASET_SNAPSHOT_CREATED.topic: "dataset",
        BATCH_REQUESTED.topic: "batch",
        BATCH_PROGRESS.topic: "batch",
        BATCH_COMPLETED.topic: "batch",
    }[topic]
    return [(kind, data)]


def _job_request_summary(data: dict[str, Any]) -> dict[str, Any]:
    keep = ("job_id", "project_id", "attempt", "name", "framework", "task_type", "model", "dataset_id", "snapshot_id")
    return {k: data.get(k) for k in keep} | {"resumed_from_epoch": (data.get("resume_from") or {}).get("epoch")}


@dataclass(frozen=True)
class FeedFilter:
    """What one client subscribed to; always within its own project."""

    project_id: UUID
    job_ids: frozenset[UUID] = field(default_factory=frozenset)
    types: frozenset[str] = field(default_factory=frozenset)

    def wants_event(self, event: FeedEvent) -> bool:
        if event.project_id != self.project_id:
            return False
        return not self.job_ids or event.job_id in self.job_ids

    def wants_type(self, kind: str) -> bool:
        return not self.types or kind in self.types

    def select(self, messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages of a wanted event that pass the type filter."""
        return [m for m in messages if self.wants_type(m["type"])]

    def wire(self, event: FeedEvent) -> list[str]:
        """The JSON texts of a wanted event's messages that pass the type filter."""
        return [text for kind, text in event.wire if self.wants_type(kind)]
