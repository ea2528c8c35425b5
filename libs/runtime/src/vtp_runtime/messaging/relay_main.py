"""``vtp-outbox-relay``: run a service's outbox relay as its own process.

Services normally relay in-process; a standalone relay lets operators scale or
restart it separately, and lets tests kill it at a precise point.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from vtp_runtime.db.engine import make_engine
from vtp_runtime.db.outbox import OutboxRelay
from vtp_runtime.logging import configure_logging
from vtp_runtime.messaging.kafka import KafkaEventPublisher
from vtp_runtime.settings import ServiceSettings
from vtp_runtime.supervision import Background, Supervisor


async def _run(settings: ServiceSettings) -> None:
    if not settings.database_url:
        raise SystemExit("VTP_DATABASE_URL is required")
    engine = make_engine(settings.database_url, pool_size=1)
    publisher = KafkaEventPublisher(
        settings.kafka_bootstrap_servers, idempotent=settings.kafka_idempotent_producer, client_id="outbox-relay"
    )
    await publisher.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        relay = OutboxRelay(engine, publisher, poll_seconds=settings.outbox_poll_seconds)
        await Supervisor().run(Background("outbox relay", relay.run), stop)  # restarts it after a crash
    finally:
        await publisher.stop()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Publish a service database's outbox to Kafka.")
    parser.parse_args()
    settings = ServiceSettings(service_name="outbox-relay")
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
