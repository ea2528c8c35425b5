"""Composition root of the notifier service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_notifier import __version__
from vtp_notifier.adapters.fanout import RedisFanout
from vtp_notifier.adapters.secret_box import SecretBox
from vtp_notifier.adapters.tickets import RedisTicketStore
from vtp_notifier.adapters.webhook_sender import WebhookSender
from vtp_notifier.domain.targets import TargetPolicy
from vtp_notifier.entrypoints import consumers, subscriptions_http, ws
from vtp_notifier.service_layer.dispatcher import DispatchPolicy, WebhookDispatcher
from vtp_notifier.service_layer.hub import Hub
from vtp_notifier.service_layer.ingest import FeedIngest
from vtp_notifier.service_layer.retention import feed_pruner
from vtp_notifier.service_layer.subscriptions import WebhookDeps
from vtp_notifier.settings import NotifierSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime
from vtp_runtime.supervision import Background

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
    box = SecretBox.from_settings(
        settings.webhook_secret_key, settings.database_url, local=settings.environment == "local"
    )
    targets = TargetPolicy.from_cidrs(settings.webhook_allowed_cidrs)
    sender = WebhookSender.create(targets, settings.webhook_timeout_seconds, settings.webhook_connections_per_target)
    dispatcher = WebhookDispatcher(sessions, sender, box, DispatchPolicy.from_settings(settings))
    runtime.parts.background.append(Background("webhook dispatcher", dispatcher.run))
    runtime.parts.on_shutdown.append(sender.aclose)
    pace = consumers.register(broker, FeedIngest(sessions, fanout, dispatcher.wake), settings, runtime.dead_letters)
    runtime.parts.ticket_verifier = tickets
    runtime.parts.background += [
        Background("feed fan-out listener", fanout.listener(hub.dispatch, hub.gap)),
        Background("feed poll pace", pace.run),
        feed_pruner(sessions, settings.feed_retention_hours),
    ]
    runtime.parts.routers = [
        ws.build_router(hub, sessions, tickets, fanout.connected, settings, runtime.parts.verifier),
        subscriptions_http.build_router(WebhookDeps(sessions, box, targets, wake=dispatcher.wake)),
    ]
    return build_app(runtime.parts)
