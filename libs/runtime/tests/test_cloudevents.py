"""CloudEvents binary mode: headers, key, payload and trace context survive the trip."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from vtp_contracts.catalog import EPOCH_PROGRESS, JOB_LOG
from vtp_contracts.events.jobs import EpochProgress
from vtp_runtime.messaging.cloudevents import MalformedEvent, decode_event, kafka_headers, make_event
from vtp_runtime.messaging.tracing import parse_traceparent, set_current_trace


def _progress() -> EpochProgress:
    return EpochProgress(
        job_id=uuid.uuid4(), project_id=uuid.uuid4(), attempt=2, epoch=3, total_epochs=10, val_metrics={"mAP50": 0.5}
    )


def test_binary_mode_headers_and_key():
    data = _progress()
    event = make_event(EPOCH_PROGRESS, data, "trainer-runner")
    assert event.topic == "epoch.progress.v1"
    assert event.key == str(data.job_id) == event.headers["ce_subject"]
    assert event.headers["ce_type"] == "ai.vtp.epoch.progress.v1"
    assert event.headers["ce_source"] == "/services/trainer-runner"
    assert event.headers["ce_specversion"] == "1.0"
    assert event.headers["content-type"] == "application/json"
    assert datetime.fromisoformat(event.headers["ce_time"]).tzinfo is not None
    assert parse_traceparent(event.headers["traceparent"]) is not None
    assert json.loads(event.value)["epoch"] == 3


def test_round_trip():
    data = _progress()
    event = make_event(EPOCH_PROGRESS, data, "trainer-runner")
    envelope = decode_event(EPOCH_PROGRESS, kafka_headers(event.headers), event.value)
    assert envelope.id == event.id and envelope.data == data and envelope.subject == event.key


def test_trace_continues_from_the_current_context():
    parent = parse_traceparent("00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    set_current_trace(parent)
    try:
        event = make_event(EPOCH_PROGRESS, _progress(), "x")
    finally:
        set_current_trace(None)
    child = parse_traceparent(event.headers["traceparent"])
    assert child is not None and parent is not None
    assert child.trace_id == parent.trace_id and child.span_id != parent.span_id


def test_payload_of_the_wrong_model_is_refused():
    with pytest.raises(TypeError):
        make_event(JOB_LOG, _progress(), "x")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h, v: ({k: x for k, x in h.items() if k != "ce_id"}, v),
        lambda h, v: ({**h, "ce_type": "ai.vtp.job.log.v1"}, v),
        lambda h, v: (h, b"{not json"),
        lambda h, v: (h, json.dumps({"epoch": 1}).encode()),
    ],
    ids=["missing-id", "wrong-type", "bad-json", "invalid-payload"],
)
def test_malformed_records_are_reported(mutate):
    event = make_event(EPOCH_PROGRESS, _progress(), "x")
    headers, value = mutate(dict(event.headers), event.value)
    with pytest.raises(MalformedEvent):
        decode_event(EPOCH_PROGRESS, kafka_headers(headers), value)


def test_bad_traceparent_is_ignored():
    assert parse_traceparent("00-" + "0" * 32 + "-" + "b" * 16 + "-01") is None
    assert parse_traceparent("garbage") is None
