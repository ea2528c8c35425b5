"""Poison events on the real stack: they end in `<topic>.dlq`, the consumers go on, `vtp-dlq` replays them.

`job.log.v1` is read by two consumer groups (jobs and notifier). A record that is not an
event at all is dead-lettered by both at once; a valid event whose text holds a NUL
character cannot be stored by the notifier (PostgreSQL refuses it in JSONB), so after
`VTP_CONSUMER_MAX_TRIES` tries the notifier dead-letters it. A valid event after both, on
the same partition, is still consumed: the groups' committed offsets move past it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from vtp_contracts.catalog import JOB_LOG
from vtp_contracts.events.jobs import JobLog, LogLine
from vtp_localstack.stack import LocalStack
from vtp_runtime.messaging.cloudevents import kafka_headers, make_event
from vtp_runtime.messaging.dlq_main import DeadLetter, read_dead_letters
from vtp_runtime.messaging.kafka import KafkaEventPublisher

pytestmark = pytest.mark.integration
DEADLINE_SECONDS = 90.0


def log_event(job_id: uuid.UUID, text: str) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    line = LogLine(time=datetime.now(UTC), level="info", message=text)
    event = make_event(JOB_LOG, JobLog(job_id=job_id, project_id=uuid.uuid4(), attempt=1, lines=[line]), "tests")
    return event.id, event.value, kafka_headers(event.headers)


async def letters_for(bootstrap: str, marker: bytes, count: int) -> list[DeadLetter]:
    """Wait until `count` dead letters whose value holds `marker` are in job.log.v1.dlq."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        found = [d for d in await read_dead_letters(bootstrap, JOB_LOG.topic) if marker in (d.value or b"")]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(1.0)


async def committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
        meta = offsets.get(tp)
        return meta.offset if meta is not None else -1
    finally:
        await admin.close()


async def test_poison_events_are_dead_lettered_with_their_headers_and_consumption_goes_on(
    stack: LocalStack, admin_token: str
) -> None:
    bootstrap = stack.cfg.kafka_bootstrap
    job_id = uuid.uuid4()
    key = str(job_id).encode()  # one key: every record below lands on one partition, in this order
    marker = uuid.uuid4().hex
    nul_id, nul_value, nul_headers = log_event(job_id, f"{marker} before\x00after")
    _, after_value, after_headers = log_event(job_id, "a healthy line after the poison")

    publisher = KafkaEventPublisher(bootstrap, client_id="dlq-test")
    await publisher.start()
    try:
        await publisher.send_raw(JOB_LOG.topic, key, f'{{"junk": "{marker}"}}'.encode(), [("ce_id", b"junk")])
        await publisher.send_raw(JOB_LOG.topic, key, nul_value, nul_headers)
        await publisher.send_raw(JOB_LOG.topic, key, after_value, after_headers)
    finally:
        await publisher.stop()

    letters = await letters_for(bootstrap, marker.encode(), count=3)
    by_reason = {(d.header("dlq-consumer-group"), (d.header("dlq-reason") or "")[:9]): d for d in letters}
    assert set(by_reason) >= {("jobs", "malformed"), ("notifier", "malformed")}, [d.summary() for d in letters]
    malformed = by_reason[("notifier", "malformed")]
    assert malformed.header("ce_id") == "junk" and malformed.key == key  # the original key and headers kept
    assert malformed.header("dlq-original-topic") == JOB_LOG.topic and malformed.header("dlq-attempts") == "1"
    [nul] = [d for d in letters if d.header("ce_id") == nul_id and d.header("dlq-consumer-group") == "notifier"]
    assert nul.value == nul_value and nul.header("ce_type") == JOB_LOG.ce_type
    assert nul.header("dlq-attempts") == "5"  # VTP_CONSUMER_MAX_TRIES
    assert not (nul.header("dlq-reason") or "malformed").startswith("malformed")  # it parsed; it could not be stored

    # Both groups went on past the poison: their committed offsets pass the healthy event after it.
    partition = int(nul.header("dlq-original-partition") or -1)
    healthy_offset = int(nul.header("dlq-original-offset") or 0) + 1
    tp = TopicPartition(JOB_LOG.topic, partition)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not all([await committed(bootstrap, g, tp) > healthy_offset for g in ("jobs", "notifier")]):
        assert time.monotonic() < deadline, "a consumer group did not get past the poison events"
        await asyncio.sleep(0.5)

    # The notifier counts them in its metrics (admin token only).
    notifier = stack.cfg.service_url("notifier")
    async with httpx.AsyncClient(base_url=notifier, timeout=10) as client:
        assert (await client.get("/metrics")).status_code == 401
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {admin_token}"})
    assert metrics.status_code == 200, metrics.text
    counts = [ln for ln in metrics.text.splitlines() if ln.startswith("vtp_dead_letters_total{")]
    assert any('group="notifier"' in ln and 'topic="job.log.v1"' in ln for ln in counts), metrics.text


async def test_vtp_dlq_replays_a_dead_letter_to_its_topic_unchanged(stack: LocalStack) -> None:
    bootstrap = stack.cfg.kafka_bootstrap
    marker = uuid.uuid4().hex
    publisher = KafkaEventPublisher(bootstrap, client_id="dlq-test")
    await publisher.start()
    try:
        await publisher.send_raw(JOB_LOG.topic, b"k-" + marker.encode(), marker.encode(), [("ce_id", marker.encode())])
    finally:
        await publisher.stop()
    # Both groups dead-letter it, in either order: wait for both, then replay the jobs group's letter.
    letters = await letters_for(bootstrap, marker.encode(), 2)
    [letter] = [d for d in letters if d.header("dlq-consumer-group") == "jobs"]

    reader = AIOKafkaConsumer(JOB_LOG.topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest")
    await reader.start()
    try:
        await reader.seek_to_end()
        for tp in reader.assignment():
            await reader.position(tp)  # pin "latest" before the replay
        cli = [sys.executable, "-m", "vtp_runtime.messaging.dlq_main"]
        where = ["--bootstrap", bootstrap, "--offset", f"{letter.partition}:{letter.offset}"]
        listed = await _run([*cli, "list", JOB_LOG.topic, *where])
        assert listed.returncode == 0 and marker in listed.stdout, listed.stderr
        replayed = await _run([*cli, "replay", JOB_LOG.topic, *where])
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed 1 event(s) to job.log.v1" in replayed.stderr
        again = await asyncio.wait_for(_first_with(reader, marker.encode()), DEADLINE_SECONDS)
    finally:
        await reader.stop()
    assert again.key == letter.key and again.value == marker.encode()
    assert [(k, v) for k, v in again.headers] == [("ce_id", marker.encode())]  # no dlq-* headers


async def _first_with(reader: AIOKafkaConsumer, value: bytes) -> Any:
    async for record in reader:
        if record.value == value:
            return record


async def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60)
