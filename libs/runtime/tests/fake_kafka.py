"""Hand-written Kafka fakes for the runtime's unit tests: records, and a sender that records dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field

from vtp_runtime.messaging.cloudevents import OutboundEvent, kafka_headers


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int | None = None

    @classmethod
    def of(cls, event: OutboundEvent, offset: int, partition: int = 0) -> FakeRecord:
        return cls(event.topic, partition, offset, event.key.encode(), event.value, kafka_headers(event.headers))


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


class RecordingSender:
    """Keeps what it is asked to send; `fail` makes the next sends raise (the broker refuses)."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.fail: Exception | None = None

    async def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(Sent(topic, key, value, {k: v.decode() for k, v in headers}))
