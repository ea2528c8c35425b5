"""subscribe_batch(): several topics in one handler call, poison records dead-lettered (in-memory broker)."""

from __future__ import annotations

import uuid

from fake_kafka import RecordingSender
from faststream.kafka import KafkaBroker, TestKafkaBroker

from vtp_contracts import EventEnvelope
from vtp_contracts.catalog import EPOCH_PROGRESS, JOB_LOG
from vtp_contracts.events.jobs import EpochProgress
from vtp_runtime.messaging.cloudevents import make_event
from vtp_runtime.messaging.consumer import subscribe_batch
from vtp_runtime.messaging.dead_letter import DeadLetters


async def test_batch_handler_gets_typed_envelopes_of_every_subscribed_topic() -> None:
    broker = KafkaBroker()
    sender = RecordingSender()
    batches: list[list[EventEnvelope]] = []

    async def handler(events: list[EventEnvelope]) -> None:
        batches.append(events)

    subscribe_batch(broker, [EPOCH_PROGRESS, JOB_LOG], "tests", handler, DeadLetters(sender))
    data = EpochProgress(job_id=uuid.uuid4(), project_id=uuid.uuid4(), attempt=1, epoch=1, total_epochs=2)
    event = make_event(EPOCH_PROGRESS, data, "trainer-runner")
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"{}", JOB_LOG.topic, headers={"ce_id": "junk"})  # poison: dead-lettered
        await test_broker.publish(event.value, event.topic, key=event.key.encode(), headers=event.headers)
    assert [[e.id for e in batch] for batch in batches] == [[event.id]]
    assert batches[0][0].data == data
    assert [(d.topic, d.headers["ce_id"]) for d in sender.sent] == [("job.log.v1.dlq", "junk")]
