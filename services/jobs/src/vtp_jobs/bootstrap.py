"""Composition root of the jobs service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_jobs import __version__
from vtp_jobs.adapters.datasets_client import DatasetsClient
from vtp_jobs.adapters.kafka_progress import KafkaProgress
from vtp_jobs.entrypoints.consumers import command_republisher, heartbeat_watchdog, register
from vtp_jobs.entrypoints.http import build_router
from vtp_jobs.service_layer.commands import Deps
from vtp_jobs.service_layer.unit_of_work import JobsUnitOfWork
from vtp_jobs.settings import JobsSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: JobsSettings | None = None) -> FastAPI:
    settings = settings or JobsSettings()
    runtime = ServiceRuntime(settings, __version__)
    sessions = runtime.use_database(MIGRATIONS)
    broker = runtime.use_kafka()
    relay = runtime.use_outbox()

    def new_uow() -> JobsUnitOfWork:
        return JobsUnitOfWork(sessions, settings.service_name, relay)

    datasets = DatasetsClient(settings.datasets_url)
    runtime.parts.on_shutdown.append(datasets.aclose)
    register(broker, new_uow, runtime.dead_letters)
    progress = KafkaProgress(settings.kafka_bootstrap_servers)
    runtime.parts.background.append(
        heartbeat_watchdog(new_uow, settings.heartbeat_timeout_seconds, settings.heartbeat_check_seconds, progress)
    )
    if settings.queued_republish_seconds > 0:
        after, every = settings.queued_republish_seconds, settings.heartbeat_check_seconds
        runtime.parts.background.append(command_republisher(new_uow, after, every, progress, settings.runner_group))
    runtime.parts.routers = [build_router(Deps(new_uow, datasets))]
    return build_app(runtime.parts)
