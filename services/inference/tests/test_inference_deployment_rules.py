"""The deployment's lifecycle rules: activate/deactivate, switch and rollback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from vtp_inference.domain.model import Deployment, DeploymentConflict, NoPreviousExport, Status

NOW = datetime.now(UTC)


def _deployment(status: Status = Status.READY) -> Deployment:
    d = Deployment(uuid.uuid4(), uuid.uuid4(), "d", uuid.uuid4(), "onnxruntime", NOW, NOW, status, export_version=1)
    d.model, d.model_meta = {"uri": "a", "sha256": "1" * 64, "size_bytes": 1}, {"imgsz": 64, "names": {}}
    return d


def test_activate_and_deactivate_move_only_between_ready_and_stopped():
    d = _deployment()
    assert d.deactivate(NOW) and d.status == Status.STOPPED
    assert not d.deactivate(NOW)  # again: nothing to announce
    assert d.activate(NOW) and d.status == Status.READY
    for status in (Status.FAILED, Status.CREATING):
        with pytest.raises(DeploymentConflict):
            _deployment(status).activate(NOW)


def test_switch_then_rollback_toggles_between_two_exports():
    d = _deployment()
    first = d.export_id
    with pytest.raises(NoPreviousExport):
        d.rollback()
    second = uuid.uuid4()
    d.switch(second, 2, {"uri": "b", "sha256": "2" * 64, "size_bytes": 2}, {"imgsz": 64, "names": {}})
    assert d.export_id == second and d.previous is not None and d.previous["export_id"] == str(first)
    d.rollback()
    assert d.export_id == first and d.export_version == 1 and d.model is not None and d.model["uri"] == "a"
    d.rollback()
    assert d.export_id == second and d.model is not None and d.model["uri"] == "b"
    with pytest.raises(DeploymentConflict):
        _deployment(Status.FAILED).switch(second, 2, {}, {})
