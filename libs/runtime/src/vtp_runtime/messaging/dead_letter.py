"""Dead letters: an event a consumer cannot parse or apply goes to ``<topic>.dlq``, never away.

The dead-letter record keeps the original key, value and headers (the ``ce_*`` envelope
included) and adds why and where it came from, so an operator can inspect it and replay it
to its topic (``vtp-dlq``); consumers are idempotent by event id, so a replay is harmless
to every group that had applied it. Each dead letter is counted in ``/metrics``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from vtp_runtime.metrics import METRICS, Metrics

DLQ_SUFFIX = ".dlq"
H_REASON = "dlq-reason"
H_GROUP = "dlq-consumer-group"
H_ATTEMPTS = "dlq-attempts"
H_TOPIC = "dlq-original-topic"
H_PARTITION = "dlq-original-partition"
H_OFFSET = "dlq-original-offset"
H_TIME = "dlq-time"
DLQ_HEADERS = frozenset({H_REASON, H_GROUP, H_ATTEMPTS, H_TOPIC, H_PARTITION, H_OFFSET, H_TIME})
_log = logging.getLogger(__name__)


def dead_letter_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


class Record(Protocol):
    """What a consumed Kafka record offers (aiokafka's ConsumerRecord)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class RawSender(Protocol):
    async def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None: ...


def dead_letter_headers(record: Record, group: str, reason: str, attempts: int) -> list[tuple[str, bytes]]:
    """The record's own headers (earlier dead-letter ones dropped) plus where and why."""
    kept = [(k, v) for k, v in record.headers if k not in DLQ_HEADERS]
    added = {
        H_REASON: reason[:1000],
        H_GROUP: group,
        H_ATTEMPTS: str(attempts),
        H_TOPIC: record.topic,
        H_PARTITION: str(record.partition),
        H_OFFSET: str(record.offset),
        H_TIME: datetime.now(UTC).isoformat(),
    }
    return kept + [(k, v.encode()) for k, v in added.items()]


class DeadLetters:
    """Sends dead letters and counts each event's failed tries (in this process, bounded)."""

    def __init__(self, sender: RawSender, *, max_tries: int = 5, metrics: Metrics = METRICS) -> None:
        self._sender = sender
        self.max_tries = max_tries
        self._metrics = metrics
        self._tries: OrderedDict[tuple[str, str, int, int], int] = OrderedDict()
        self._sent: OrderedDict[tuple[str, str, int, int], None] = OrderedDict()  # not again for a redelivered batch

    def failed_try(self, record: Record, group: str) -> int:
        """Count one failed try of `record` in `group`; returns the tries so far."""
        key = (group, record.topic, record.partition, record.offset)
        tries = self._tries.pop(key, 0) + 1
        self._tries[key] = tries
        _bound(self._tries)  # records that never came again (their partition moved to another replica)
        return tries

    def succeeded(self, record: Record, group: str) -> None:
        self._tries.pop((group, record.topic, record.partition, record.offset), None)

    async def send(self, record: Record, group: str, reason: str, attempts: int) -> None:
        """Publish `record` to its dead-letter topic; raises (the caller redelivers) if Kafka refuses."""
        key = (group, record.topic, record.partition, record.offset)
        if key in self._sent:  # already there: this is a redelivery of the batch it was in
            return
        headers = dead_letter_headers(record, group, reason, attempts)
        await self._sender.send_raw(dead_letter_topic(record.topic), record.key, record.value, headers)
        self.succeeded(record, group)
        self._sent[key] = None
        _bound(self._sent)
        self._metrics.inc("vtp_dead_letters_total", topic=record.topic, group=group)
        _log.error(
            "dead-lettered %s[%d]@%d for group %s after %d tries: %s",
            record.topic,
            record.partition,
            record.offset,
            group,
            attempts,
            reason,
        )


def _bound(entries: OrderedDict[tuple[str, str, int, int], Any], limit: int = 10_000) -> None:
    while len(entries) > limit:
        entries.popitem(last=False)
