"""``vtp-dlq``: list the dead letters of a topic and replay them to it.

``vtp-dlq list job.log.v1`` prints one JSON line per record in ``job.log.v1.dlq`` (where it
came from, which consumer group gave up on it, why). ``vtp-dlq replay job.log.v1`` publishes
them again to their original topic, key, value and ``ce_*`` headers unchanged (the ``dlq-*``
headers dropped); ``--group`` and ``--offset PARTITION:OFFSET`` pick some. Every consumer
group sees a replayed event again, and those that had applied it skip it by its event id.
Reads use no consumer group, so listing or replaying twice changes nothing on the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from vtp_runtime.messaging.dead_letter import DLQ_HEADERS, DLQ_SUFFIX, H_GROUP, H_TOPIC, dead_letter_topic
from vtp_runtime.messaging.kafka import KafkaEventPublisher, PublishError
from vtp_runtime.settings import ServiceSettings


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), None)

    def summary(self) -> dict[str, object]:
        wanted = ("ce_id", "ce_type", *sorted(DLQ_HEADERS))
        return {"partition": self.partition, "offset": self.offset} | {h: self.header(h) for h in wanted}


async def read_dead_letters(bootstrap: str, topic: str, timeout: float = 30.0) -> list[DeadLetter]:
    """Every record now in `topic`'s dead-letter topic, partition by partition."""
    consumer = AIOKafkaConsumer(
        dead_letter_topic(topic), bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", client_id="vtp-dlq",
    )  # fmt: skip
    await consumer.start()
    try:
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        letters: list[DeadLetter] = []
        async with asyncio.timeout(timeout):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    letters += [DeadLetter(r.partition, r.offset, r.key, r.value, list(r.headers)) for r in records]
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


def select(letters: Sequence[DeadLetter], group: str | None, offsets: Sequence[str]) -> list[DeadLetter]:
    """The letters of consumer group `group` (any if None) at `offsets` ("partition:offset"; all if none)."""
    wanted = {tuple(int(n) for n in o.split(":", 1)) for o in offsets}
    return [
        d
        for d in letters
        if (group is None or d.header(H_GROUP) == group) and (not wanted or (d.partition, d.offset) in wanted)
    ]


async def replay(publisher: KafkaEventPublisher, topic: str, letters: Sequence[DeadLetter]) -> None:
    """Publish each letter to its original topic as it was before it became a dead letter."""
    for d in letters:
        original = d.header(H_TOPIC) or topic
        headers = [(k, v) for k, v in d.headers if k not in DLQ_HEADERS]
        await publisher.send_raw(original, d.key, d.value, headers)


async def _run(args: argparse.Namespace) -> int:
    topic = args.topic.removesuffix(DLQ_SUFFIX)
    bootstrap = args.bootstrap or ServiceSettings().kafka_bootstrap_servers
    letters = select(await read_dead_letters(bootstrap, topic), args.group, args.offset)
    for d in letters:
        print(json.dumps(d.summary()))
    if args.command == "replay" and letters and not args.dry_run:
        publisher = KafkaEventPublisher(bootstrap, client_id="vtp-dlq")
        await publisher.start()
        try:
            await replay(publisher, topic, letters)
        finally:
            await publisher.stop()
        print(f"replayed {len(letters)} event(s) to {topic}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vtp-dlq", description="Inspect and replay a topic's dead letters.")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("topic", help="the original topic, e.g. job.log.v1 (or its .dlq name)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: VTP_KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--group", help="only the letters this consumer group gave up on")
    parser.add_argument("--offset", action="append", default=[], help="PARTITION:OFFSET in the .dlq topic (repeat)")
    parser.add_argument("--dry-run", action="store_true", help="replay: print what would be replayed")
    args = parser.parse_args(argv)
    try:
        raise SystemExit(asyncio.run(_run(args)))
    except (KafkaError, PublishError, TimeoutError) as exc:
        raise SystemExit(f"vtp-dlq: {exc}") from exc


if __name__ == "__main__":
    main()
