"""subscribe(): typed envelopes for handlers, poison records dead-lettered (in-memory broker)."""

from __future__ import annotations

import uuid

from fake_kafka import RecordingSender
from faststream.kafka import KafkaBroker, TestKafkaBroker

from vtp_contracts import EventEnvelope
from vtp_contracts.catalog import EPOCH_PROGRESS
from vtp_contracts.events.jobs import EpochProgress
from vtp_runtime.messaging.cloudevents import make_event
from vtp_runtime.messaging.consumer import subscribe
from vtp_runtime.messaging.dead_letter import DeadLetters


async def test_handler_gets_a_typed_envelope_and_malformed_records_are_skipped():
    broker = KafkaBroker()
    sender = RecordingSender()
    seen: list[EventEnvelope] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event)

    subscribe(broker, EPOCH_PROGRESS, "tests", handler, DeadLetters(sender))
    data = EpochProgress(job_id=uuid.uuid4(), project_id=uuid.uuid4(), attempt=1, epoch=1, total_epochs=2)
    event = make_event(EPOCH_PROGRESS, data, "trainer-runner")
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"{}", EPOCH_PROGRESS.topic, headers={"ce_id": "junk"})
        await test_broker.publish(event.value, event.topic, key=event.key.encode(), headers=event.headers)
    assert [e.id for e in seen] == [event.id]
    assert seen[0].data == data
    [dead] = sender.sent  # the poison record went to the dead-letter topic, not away
    assert dead.topic == "epoch.progress.v1.dlq" and dead.value == b"{}"
    assert dead.headers["ce_id"] == "junk" and dead.headers["dlq-consumer-group"] == "tests"
    assert dead.headers["dlq-reason"].startswith("malformed:") and dead.headers["dlq-attempts"] == "1"
