"""After a crash an export goes back to the group as its next attempt, until the attempts run out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.catalog import EXPORT_COMPLETED, EXPORT_REQUESTED
from vtp_export.domain.model import Export, Status
from vtp_export.service_layer.lifecycle import requeue_or_fail, summary


class FakeRepo:
    def __init__(self) -> None:
        self.saved: list[Export] = []

    async def save(self, export: Export) -> None:
        self.saved.append(export)


class FakeUow:
    def __init__(self) -> None:
        self.repo = FakeRepo()
        self.published: list[tuple[str, Any]] = []

    async def publish(self, spec: Any, data: Any) -> str:
        self.published.append((spec.topic, data))
        return "id"


def _running(attempt: int) -> Export:
    return Export(
        id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        job_id=uuid.uuid4(),
        version=1,
        format="onnx",
        options={"imgsz": 64},
        task_type="detect",
        checkpoint={"uri": "local://vtp/c.pt", "sha256": "a" * 64, "size_bytes": 10, "kind": "best", "epoch": 0},
        source={"snapshot_id": str(uuid.uuid4()), "snapshot_content_hash": "b" * 64, "split_fingerprint": None},
        content_key="k",
        created_at=datetime.now(UTC),
        status=Status.RUNNING,
        attempt=attempt,
        lease_owner="w1",
        stage="validating",
    )


def test_a_crash_requeues_the_next_attempt():
    uow, export = FakeUow(), _running(1)
    asyncio.run(requeue_or_fail(uow, export, "child died", max_attempts=3))  # type: ignore[arg-type]
    assert export.status == Status.QUEUED and export.attempt == 2 and export.lease_owner is None
    [(topic, command)] = uow.published
    assert topic == EXPORT_REQUESTED.topic and command.attempt == 2 and command.checkpoint.sha256 == "a" * 64


def test_the_last_attempt_fails_the_export():
    uow, export = FakeUow(), _running(3)
    asyncio.run(requeue_or_fail(uow, export, "child died", max_attempts=3))  # type: ignore[arg-type]
    assert export.status == Status.FAILED and export.error_code == "EXPORTER_CRASHED"
    [(topic, event)] = uow.published
    assert topic == EXPORT_COMPLETED.topic and event.status == "failed" and event.error_code == "EXPORTER_CRASHED"


def test_the_event_summarises_the_stored_report():
    report = {
        "passed": False,
        "precision": "fp32",
        "raw": {"images": 4, "max_abs_diff": 5.0, "min_iou": 0.4, "max_score_diff": 0.1, "class_agreement": 1.0},
        "metric": {"name": "mAP50-95", "delta": -0.2},
        "failures": ["boxes"],
    }
    out = summary(report)
    assert out["metric_delta"] == {"mAP50-95": -0.2} and out["images_compared"] == 4 and out["failures"] == ["boxes"]
