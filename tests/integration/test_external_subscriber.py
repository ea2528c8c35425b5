"""An outside system reads platform events with plain aiokafka and the CloudEvents SDK.

This test imports nothing of the platform on the consuming side: the envelope is
parsed by the official `cloudevents` package, the payload checked against the
committed JSON Schema with `jsonschema`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from vtp_contracts.catalog import JOB_LIFECYCLE
from vtp_contracts.events.jobs import JobLifecycle
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import make_event
from vtp_runtime.messaging.kafka import KafkaEventPublisher

pytestmark = pytest.mark.integration
SCHEMA = Path(__file__).resolve().parents[2] / "contracts" / "schemas" / "job.lifecycle.v1.json"


async def test_plain_kafka_client_with_cloudevents_sdk_reads_platform_events(stack: LocalStack):
    job_id = uuid.uuid4()
    events = [
        make_event(
            JOB_LIFECYCLE,
            JobLifecycle(
                job_id=job_id,
                project_id=uuid.uuid4(),
                attempt=1,
                status=status,
                runner_id="runner-1",
                occurred_at=datetime.now(UTC),
            ),
            "trainer-runner",
        )
        for status in ("started", "completed")
    ]
    publisher = KafkaEventPublisher(stack.cfg.kafka_bootstrap)
    await publisher.start()
    try:
        await publisher.publish(events)
    finally:
        await publisher.stop()

    # --- from here on: an outside system that knows only Kafka, CloudEvents and the schema ---
    consumer = AIOKafkaConsumer(
        "job.lifecycle.v1",
        bootstrap_servers=stack.cfg.kafka_bootstrap,
        group_id=f"outside-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    schema = json.loads(SCHEMA.read_text())
    received = []
    try:
        async with asyncio.timeout(30):
            while len(received) < 2:
                record = await consumer.getone()
                event = from_binary_event(
                    KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
                )
                if event.get_subject() == str(job_id):
                    jsonschema.validate(event.get_data(), schema)
                    received.append(event)
    finally:
        await consumer.stop()
    assert [e.get_id() for e in received] == [e.id for e in events]  # same partition, same order
    assert [e.get_data()["status"] for e in received] == ["started", "completed"]
    assert all(e.get_type() == "ai.vtp.job.lifecycle.v1" and e.get_specversion() == "1.0" for e in received)
    assert received[0].get_extension("partitionkey") == str(job_id)
