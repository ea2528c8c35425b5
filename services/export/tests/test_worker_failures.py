"""The exporter's take loop under injected failures: poison commands, failing claims and commits, crashes.

The runtime's `FakeConsumer` stands in for the Kafka consumer, hand-written fakes for the dead-letter
producer and the export database (an in-memory repository behind the real `lifecycle` transactions);
the attempt is the real `ExportAttempt` with its work replaced by waiting until it is handed back.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import sqlalchemy.exc as sa_errors
from aiokafka.errors import KafkaConnectionError

from vtp_contracts.catalog import EXPORT_REQUESTED
from vtp_export.domain.model import Export, Status
from vtp_export.service_layer.commands import requested_event
from vtp_export.settings import ExportSettings
from vtp_export.worker.attempt import ExportAttempt
from vtp_export.worker.runner import TASK_NAME, Exporter
from vtp_runtime.messaging.cloudevents import OutboundEvent, kafka_headers, make_event
from vtp_runtime.messaging.dead_letter import DeadLetters
from vtp_runtime.messaging.testing import FakeConsumer, run_until, until
from vtp_runtime.metrics import Metrics
from vtp_runtime.supervision import Background, Backoff, Supervisor
from vtp_runtime.tracing import current_trace_id

OWNER = "exporter-test"


class Record:
    def __init__(self, event: OutboundEvent | None, offset: int, value: bytes | None = None) -> None:
        self.topic, self.partition, self.offset, self.timestamp = EXPORT_REQUESTED.topic, 0, offset, None
        self.key = event.key.encode() if event else b"k"
        self.value = event.value if event else value
        self.headers = kafka_headers(event.headers) if event else [("ce_type", b"export.requested.v1")]


class FakeDb:
    """The export table in memory; `claim_errors` are raised by the next claims, in turn."""

    def __init__(self) -> None:
        self.exports: dict[uuid.UUID, Export] = {}
        self.published: list[tuple[str, Any]] = []
        self.claim_errors: list[Exception] = []


class FakeRepo:
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def claim(self, export_id: uuid.UUID, attempt: int, owner: str, lease: timedelta, now: datetime) -> Any:
        if self.db.claim_errors:
            raise self.db.claim_errors.pop(0)
        export = self.db.exports.get(export_id)
        if export is None or export.attempt != attempt or export.status != Status.QUEUED:
            return None
        export.status, export.lease_owner, export.lease_expires_at = Status.RUNNING, owner, now + lease
        return export

    async def held(self, export_id: uuid.UUID, attempt: int, owner: str) -> Export | None:
        export = self.db.exports.get(export_id)
        running = export is not None and export.status == Status.RUNNING
        return export if running and export.attempt == attempt and export.lease_owner == owner else None  # type: ignore[union-attr]

    async def save(self, export: Export) -> None:
        self.db.exports[export.id] = export


class FakeUow:
    def __init__(self, db: FakeDb) -> None:
        self.db, self.repo = db, FakeRepo(db)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...

    async def publish(self, spec: Any, data: Any) -> str:
        self.db.published.append((spec.topic, data))
        return "id"


class FakeSender:
    """The dead-letter producer: refuses the first `failures` sends, then keeps what it gets."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.sent = failures, list[tuple[str, dict[str, str]]]()

    async def send_raw(self, topic: str, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker away")
        self.sent.append((topic, {k: v.decode() for k, v in headers}))


class WaitingAttempt(ExportAttempt):
    """The real attempt object with its work replaced by waiting until it is handed back or lost."""

    traces: list[str | None] = []  # the trace id each one ran in, as it ended

    async def run(self) -> None:
        try:
            await self._wait()
        finally:
            WaitingAttempt.traces.append(current_trace_id())

    async def _wait(self) -> None:
        while not self.lost:  # noqa: ASYNC110  # hand-back only sets a field
            await asyncio.sleep(0.005)


def queued(db: FakeDb) -> OutboundEvent:
    export = Export(
        id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        job_id=uuid.uuid4(),
        version=1,
        format="onnx",
        options={"imgsz": 64},
        task_type="detect",
        checkpoint={"uri": "local://vtp/c.pt", "sha256": "a" * 64, "size_bytes": 10, "kind": "best", "epoch": 0},
        source={"snapshot_id": str(uuid.uuid4()), "snapshot_content_hash": "b" * 64, "split_fingerprint": None},
        content_key=uuid.uuid4().hex,
        created_at=datetime.now(UTC),
    )
    db.exports[export.id] = export
    return make_event(EXPORT_REQUESTED, requested_event(export, datetime.now(UTC)), "export")


def exporter(db: FakeDb, consumer: FakeConsumer, sender: FakeSender, slots: int = 1) -> Exporter:
    settings = ExportSettings(exporter_id=OWNER, exporter_slots=slots, exporter_work_dir="/nonexistent")
    dead_letters = DeadLetters(sender, max_tries=3, metrics=Metrics())
    return Exporter(
        settings,
        lambda: FakeUow(db),  # type: ignore[arg-type,return-value]
        store=None,  # type: ignore[arg-type]  # never reached: the work is replaced
        toolchains=None,  # type: ignore[arg-type]
        dead_letters=dead_letters,
        retry_pause=0.01,
        new_consumer=lambda topic, **kwargs: consumer,
        new_attempt=WaitingAttempt,
    )


def handed_back(db: FakeDb) -> list[int]:
    """Attempts of the commands the worker published back to the group."""
    return [cmd.attempt for topic, cmd in db.published if topic == EXPORT_REQUESTED.topic]


def statuses(db: FakeDb) -> list[tuple[Status, str | None]]:
    return [(e.status, e.lease_owner) for e in db.exports.values()]


async def test_a_malformed_command_is_dead_lettered_and_the_next_one_still_runs() -> None:
    db, sender = FakeDb(), FakeSender()
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(None, 0, b"{not json"), Record(queued(db), 1)])
    worker = exporter(db, consumer, sender)
    await run_until(worker.take_exports, lambda: bool(worker.running) and consumer.committed[-1:] == [2])
    [(topic, headers)] = sender.sent
    assert topic == "export.requested.v1.dlq"
    assert headers["dlq-consumer-group"] == "exporters" and headers["dlq-original-offset"] == "0"
    assert headers["dlq-reason"].startswith("malformed")
    assert handed_back(db) == [2]  # the good one ran, and went back to the group at shutdown


async def test_a_dead_letter_that_cannot_be_sent_comes_again_until_it_can() -> None:
    db, sender = FakeDb(), FakeSender(failures=2)
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(None, 0, b"{not json")])
    worker = exporter(db, consumer, sender)
    await run_until(worker.take_exports, lambda: consumer.committed == [1])
    assert [topic for topic, _ in sender.sent] == ["export.requested.v1.dlq"]


async def test_a_failed_commit_is_retried_and_the_running_export_is_kept() -> None:
    db, sender = FakeDb(), FakeSender()
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(queued(db), 0)], commit_failures=2)
    worker = exporter(db, consumer, sender)
    await run_until(worker.take_exports, lambda: consumer.committed == [1] and bool(worker.running))
    assert handed_back(db) == [2] and worker.running == {} and worker.slots.free == 1  # only at shutdown


async def test_a_claim_during_a_database_outage_comes_again_and_is_never_a_dead_letter() -> None:
    db, sender = FakeDb(), FakeSender()
    db.claim_errors = [sa_errors.OperationalError("claim", {}, ConnectionError("refused"))] * 5
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(queued(db), 0)])
    worker = exporter(db, consumer, sender)
    await run_until(worker.take_exports, lambda: consumer.committed == [1])
    assert sender.sent == [] and statuses(db)[0][0] == Status.QUEUED  # handed back at shutdown


async def test_a_claim_that_keeps_failing_for_another_reason_is_dead_lettered() -> None:
    db, sender = FakeDb(), FakeSender()
    db.claim_errors = [ValueError("bad row")] * 3
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(queued(db), 0), Record(queued(db), 1)])
    worker = exporter(db, consumer, sender)
    await run_until(worker.take_exports, lambda: consumer.committed[-1:] == [2])
    [(topic, headers)] = sender.sent
    assert topic == "export.requested.v1.dlq" and headers["dlq-attempts"] == "3"
    assert headers["dlq-reason"] == "ValueError: bad row" and headers["dlq-original-offset"] == "0"
    assert handed_back(db) == [2]  # the second command was claimed and ran


async def test_under_supervision_a_crash_restarts_the_loop_without_handing_exports_back() -> None:
    db, sender = FakeDb(), FakeSender()
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(queued(db), 0)])
    worker = exporter(db, consumer, sender, slots=2)  # a free slot: it keeps fetching while the export runs
    original, calls = consumer.getmany, [0]

    async def getmany(**kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("bug in the take loop")
        return await original(**kwargs)

    consumer.getmany = getmany  # type: ignore[method-assign,assignment]
    sup = Supervisor(backoff=Backoff(initial=0.01, maximum=0.01))
    [task] = worker.background()
    assert task.name == TASK_NAME == "export commands"

    def restarted() -> bool:
        state = sup.states.get(TASK_NAME)
        return state is not None and state.restarts == 1 and calls[0] > 4

    await run_until(lambda stop: sup.run(Background(task.name, task.run), stop), restarted)
    assert handed_back(db) == [2]  # once, at shutdown; the crash did not hand it back


async def test_exports_are_handed_back_by_the_shutdown_hook_while_the_loop_waits_to_restart() -> None:
    db, sender = FakeDb(), FakeSender()
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(queued(db), 0)])
    worker = exporter(db, consumer, sender, slots=2)
    original, calls = consumer.getmany, [0]

    async def getmany(**kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] > 1:
            raise RuntimeError("bug in the take loop")  # every fetch after the first crashes
        return await original(**kwargs)

    consumer.getmany = getmany  # type: ignore[method-assign,assignment]
    sup = Supervisor(backoff=Backoff(initial=3600.0, maximum=3600.0))  # it waits out a long backoff
    stop = asyncio.Event()
    loop = asyncio.create_task(sup.run(Background(TASK_NAME, worker.take_exports), stop))
    await until(lambda: sup.states.get(TASK_NAME) is not None and sup.states[TASK_NAME].restarts == 1)
    assert worker.running and handed_back(db) == []  # the export goes on while the loop waits
    stop.set()
    await asyncio.wait_for(loop, 20)
    await worker.shutdown()  # the service's shutdown hook
    assert handed_back(db) == [2] and worker.running == {}


async def test_failing_commits_mark_the_loop_failing_in_health_until_one_succeeds() -> None:
    db, sender = FakeDb(), FakeSender()
    # One slot, full: a pass each 0.5 s.
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(queued(db), 0)], commit_failures=6)
    worker = exporter(db, consumer, sender)
    sup = Supervisor(unhealthy_after=3)
    seen: list[bool] = []
    reasons: list[str] = []

    async def probe() -> None:  # what /health's `background` check reports
        try:
            await sup.probe()
        except RuntimeError as exc:
            reasons.append(str(exc))

    def watch() -> bool:
        if sup.states.get(TASK_NAME) is not None:
            failing = bool(sup.failing())
            if failing and not reasons:
                asyncio.get_running_loop().create_task(probe())
            if not seen or seen[-1] != failing:
                seen.append(failing)
        return seen[-2:] == [True, False] and bool(reasons)

    await run_until(lambda stop: sup.run(Background(TASK_NAME, worker.take_exports), stop), watch)
    assert sup.states[TASK_NAME].restarts == 0 and consumer.committed == [1]  # handled, never a crash
    assert reasons[0].startswith("export commands: ") and "CommitFailedError" in reasons[0]


async def test_an_export_runs_in_the_trace_of_its_command() -> None:
    db = FakeDb()
    cmd = queued(db)
    consumer = FakeConsumer(EXPORT_REQUESTED.topic, [Record(cmd, 0)])
    WaitingAttempt.traces.clear()
    await run_until(exporter(db, consumer, FakeSender()).take_exports, lambda: bool(consumer.committed))
    assert WaitingAttempt.traces == [cmd.headers["traceparent"].split("-")[1]]
