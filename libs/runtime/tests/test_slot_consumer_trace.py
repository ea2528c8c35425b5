"""SlotConsumer runs `take`, and so the work it starts, in the trace of the command's `traceparent`.

The work outlives `take` (the loop has gone on to other commands meanwhile); its log lines and the
events it stages (:func:`~vtp_runtime.messaging.tracing.outgoing_trace`, what `make_event` stamps),
as late as its end, still carry its own command's trace.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiokafka.structs import TopicPartition
from fake_kafka import FakeRecord

from vtp_runtime.messaging.slot_consumer import SlotConsumer
from vtp_runtime.messaging.testing import FakeConsumer, run_until, until
from vtp_runtime.messaging.tracing import outgoing_trace, record_trace
from vtp_runtime.slots import Slots
from vtp_runtime.tracing import CURRENT, current_trace_id

TOPIC = "thing.requested.v1"
P0 = TopicPartition(TOPIC, 0)


class Traced:
    """Work that waits until `ended`, then makes its last event's trace (as a job reports its end)."""

    def __init__(self, name: str) -> None:
        self.name, self.ended = name, asyncio.Event()
        self.seen: list[str | None] = []  # the trace id at its start and at its end
        self.event_traceparent: str | None = None

    async def run(self) -> None:
        self.seen.append(current_trace_id())
        await self.ended.wait()
        self.seen.append(current_trace_id())
        self.event_traceparent = outgoing_trace().traceparent


def command(offset: int, traceparent: str | None) -> FakeRecord:
    headers = [("ce_id", b"x")] + ([("traceparent", traceparent.encode())] if traceparent else [])
    return FakeRecord(TOPIC, 0, offset, b"k", b"{}", headers)


async def test_each_commands_work_runs_in_its_commands_trace_to_its_end() -> None:
    traces = [secrets.token_hex(16), secrets.token_hex(16)]
    parents = [f"00-{trace}-{secrets.token_hex(8)}-01" for trace in traces]
    consumer = FakeConsumer(TOPIC, [command(0, parents[0]), command(1, parents[1]), command(2, None)])
    slots: Slots[tuple[int], Traced] = Slots(3, crashed="thing %s crashed")
    work: list[Traced] = []
    in_take: list[str | None] = []

    async def take(record: Any) -> bool:
        in_take.append(current_trace_id())
        work.append(Traced(str(record.offset)))
        slots.start((record.offset,), work[-1], name=f"thing-{record.offset}")
        return True

    loop = SlotConsumer(
        TOPIC,
        group="things",
        bootstrap="kafka:9092",
        client_id="w",
        slots=slots,
        take=take,
        what="thing commands",
        new_consumer=lambda *a, **k: consumer,
    )
    await run_until(loop.run, lambda: consumer.last_commit(P0) == 3)
    assert CURRENT.get() is None  # the loop's own context never kept a command's trace
    for w in work:
        w.ended.set()
    await until(lambda: not slots.running)
    assert in_take == [traces[0], traces[1], None]
    assert [w.seen for w in work[:2]] == [[traces[0]] * 2, [traces[1]] * 2]
    assert work[2].seen == [None, None]  # no traceparent: no trace adopted (its event starts one)
    for w, trace, parent in zip(work[:2], traces, parents, strict=True):
        assert w.event_traceparent is not None
        assert w.event_traceparent.split("-")[1] == trace  # a child span of the command's
        assert w.event_traceparent != parent


def test_record_trace_reads_the_w3c_headers_and_ignores_invalid_ones() -> None:
    parent = f"00-{'a' * 32}-{'b' * 16}-01"
    found = record_trace([("traceparent", parent.encode()), ("tracestate", b"vendor=1")])
    assert found is not None and found.traceparent == parent and found.tracestate == "vendor=1"
    assert record_trace([("traceparent", b"00-zz-1-01")]) is None
    assert record_trace([("traceparent", None)]) is None
    assert record_trace(None) is None and record_trace([]) is None
