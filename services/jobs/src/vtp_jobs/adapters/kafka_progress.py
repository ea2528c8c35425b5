"""How far a consumer group has got through a topic, asked of Kafka (offsets, no consuming).

The jobs service's background judges ask before acting on what they did not see:
* the command republisher: how many `job.requested` wait for the runners' group. While some
  wait, the runners are busy and a queued job's command is most likely among them.
* the heartbeat watchdog: has the jobs group applied every heartbeat sent before a time? After
  a restart of the jobs service its consumer first has to catch up; until then a running job
  only looks silent.
Each answer is None when Kafka cannot give it (unreachable, topic unknown): the caller waits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndTimestamp

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Offsets:
    begin: dict[TopicPartition, int]
    end: dict[TopicPartition, int]
    done: dict[TopicPartition, int]  # the group's committed offset, or the beginning when it has none
    consumer: AIOKafkaConsumer


class KafkaProgress:
    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap = bootstrap_servers

    async def waiting(self, topic: str, group: str) -> int | None:
        """Records of `topic` that `group` has not consumed yet."""
        async with self._offsets(topic, group) as offsets:
            if offsets is None:
                return None
            return sum(max(0, offsets.end[tp] - offsets.done[tp]) for tp in offsets.end)

    async def consumed_before(self, topic: str, group: str, at: datetime) -> bool | None:
        """Whether `group` has consumed every record of `topic` written before `at`."""
        async with self._offsets(topic, group) as offsets:
            if offsets is None:
                return None
            try:
                first_after = await offsets.consumer.offsets_for_times(
                    {tp: int(at.timestamp() * 1000) for tp in offsets.end}
                )
            except (KafkaError, OSError) as exc:
                _log.warning("cannot read offsets by time of %s: %s", topic, exc)
                return None
            for tp, end in offsets.end.items():
                if offsets.done[tp] < _first_at_or_after(first_after.get(tp), end):
                    return False
            return True

    @contextlib.asynccontextmanager
    async def _offsets(self, topic: str, group: str) -> AsyncIterator[_Offsets | None]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="jobs-progress")
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None)
        try:
            offsets: _Offsets | None = None
            try:
                await admin.start()
                await consumer.start()
                await consumer.topics()  # fresh metadata: a recreated topic's partitions
                partitions = consumer.partitions_for_topic(topic)
                if partitions:
                    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
                    committed = await admin.list_consumer_group_offsets(group, partitions=tps)
                    begin = await consumer.beginning_offsets(tps)
                    end = await consumer.end_offsets(tps)
                    done = {}
                    for tp in tps:
                        meta = committed.get(tp)
                        done[tp] = max(meta.offset if meta is not None else -1, begin[tp])
                    offsets = _Offsets(begin, end, done, consumer)
            except (KafkaError, OSError) as exc:
                _log.warning("cannot read the progress of %s on %s: %s", group, topic, exc)
            yield offsets
        finally:
            await consumer.stop()
            with contextlib.suppress(Exception):  # closing a client that never connected
                await admin.close()


def _first_at_or_after(found: OffsetAndTimestamp | None, end: int) -> int:
    """The offset `offsets_for_times` found, or the end when no record is that recent.

    Kafka says "none" with null; Tansu answers offset 0 with timestamp -1, which read as an offset
    would claim that nothing needed consuming.
    """
    if found is None or found.timestamp < 0 or found.offset < 0:
        return end
    return int(found.offset)
