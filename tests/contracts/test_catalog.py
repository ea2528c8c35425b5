"""The catalog itself: versioned names, keys that exist, the minimum topics."""

from __future__ import annotations

import re

from vtp_contracts import CATALOG

REQUIRED = {
    "job.requested.v1",
    "job.cancel-requested.v1",
    "job.lifecycle.v1",
    "job.heartbeat.v1",
    "epoch.progress.v1",
    "checkpoint.saved.v1",
    "job.log.v1",
    "export.requested.v1",
    "export.completed.v1",
    "dataset.snapshot-created.v1",
    "deployment.changed.v1",
}


def test_minimum_catalog_is_present():
    assert {s.topic for s in CATALOG} >= REQUIRED


def test_topics_are_versioned_and_unique():
    topics = [s.topic for s in CATALOG]
    assert len(topics) == len(set(topics))
    assert all(re.fullmatch(r"[a-z]+(\.[a-z-]+)+\.v[0-9]+", t) for t in topics)


def test_partition_key_is_a_required_payload_field():
    for spec in CATALOG:
        fields = spec.data_model.model_fields
        assert spec.key_field in fields, spec.topic
        assert fields[spec.key_field].is_required(), spec.topic
