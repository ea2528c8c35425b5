"""Composition root of the notifier service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_notifier import __version__
from vtp_notifier.adapters.fanout import RedisFanout
from vtp_notifier.adapters.tickets import RedisTicketStore
from vtp_notifier.entrypoints import consumers, ws
from vtp_notifier.service_layer.hub import Hub
from vtp_notifier.service_layer.ingest import FeedIngest
from vtp_notifier.service_layer.retention import feed_pruner
from vtp_notifier.settings import NotifierSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()
    runtime = ServiceRuntime(settings, __version__)
    sessions = runtime.use_database(MIGRATIONS)
    broker = runtime.use_kafka()
    redis = runtime.use_redis()

    hub = Hub()
    fanout = RedisFanout(redis, settings.feed_channel)
    tickets = RedisTicketStore(redis, settings.ws_ticket_seconds)
    consumers.register(broker, FeedIngest(sessions, fanout))
    runtime.parts.ticket_verifier = tickets
    runtime.parts.background += [
        fanout.listener(hub.dispatch, hub.gap),
        feed_pruner(sessions, settings.feed_retention_hours),
    ]
    runtime.parts.routers = [ws.build_router(hub, sessions, tickets, fanout.connected, settings)]
    return build_app(runtime.parts)
