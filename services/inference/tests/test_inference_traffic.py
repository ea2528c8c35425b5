"""Traffic split rules, the weighted draw, what a canary answer reports, and the event's `traffic`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from vtp_inference.domain.model import Deployment, DeploymentConflict, Status
from vtp_inference.domain.traffic import Share, canary_view, check_split, goes_to_canary, set_canary, shares
from vtp_inference.service_layer.events import changed

A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOW = datetime.now(UTC)


def _deployment(status: Status = Status.READY) -> Deployment:
    model = {"uri": "local://b/a", "sha256": "0" * 64, "size_bytes": 1}
    return Deployment(uuid.uuid4(), uuid.uuid4(), "d", A, "onnxruntime", NOW, NOW, status, 1, model=model)


@pytest.mark.parametrize(
    ("wanted", "codes"),
    [
        ([Share(A, 80), Share(B, 20)], []),
        ([Share(A, 100)], []),
        ([Share(B, 100)], []),  # a switch
        ([Share(A, 80), Share(B, 10)], ["traffic_weights_invalid"]),
        ([Share(A, 100), Share(B, 0)], ["traffic_weights_invalid"]),
        ([Share(A, 50), Share(B, 25), Share(C, 25)], ["traffic_too_many_exports"]),
        ([Share(B, 50), Share(C, 50)], ["traffic_current_export_missing"]),
        ([Share(A, 50), Share(A, 40)], ["traffic_duplicate_export", "traffic_weights_invalid"]),
    ],
)
def test_split_rules(wanted: list[Share], codes: list[str]) -> None:
    assert [p.code for p in check_split(wanted, A)] == codes


def test_the_canary_answers_its_weight_and_reports_itself() -> None:
    d = _deployment()
    assert not goes_to_canary(d, lambda: 0.0)
    set_canary(d, B, 2, {"uri": "local://b/b"}, {"imgsz": 64}, 20)
    assert goes_to_canary(d, lambda: 0.199) and not goes_to_canary(d, lambda: 0.2)
    view = canary_view(d)
    assert (view.export_id, view.export_version, view.canary, view.id) == (B, 2, None, d.id)
    assert [(s["export_id"], s["weight"]) for s in shares(d)] == [(A, 80), (B, 20)]
    event = changed(d, "updated", NOW)
    assert [(s.export_id, s.export_version, s.weight) for s in event.traffic or []] == [(A, 1, 80), (B, 2, 20)]


def test_a_switch_or_rollback_ends_the_split_and_a_failed_deployment_cannot_split() -> None:
    d = _deployment()
    set_canary(d, B, 2, {}, {}, 20)
    d.switch(B, 2, {}, {})
    assert d.canary is None and [s["weight"] for s in shares(d)] == [100]
    set_canary(d, C, 3, {}, {}, 10)
    d.rollback()
    assert d.canary is None
    with pytest.raises(DeploymentConflict):
        set_canary(_deployment(Status.FAILED), B, 2, {}, {}, 20)
