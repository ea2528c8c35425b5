"""Composition root of the export service: adapters wired into the app, the exporter worker alongside."""

from pathlib import Path

from fastapi import FastAPI

from vtp_export import __version__
from vtp_export.adapters.jobs_client import JobsClient
from vtp_export.adapters.toolchains import Toolchains
from vtp_export.entrypoints.http import build_router
from vtp_export.service_layer.commands import Deps
from vtp_export.service_layer.lifecycle import requeue_expired
from vtp_export.service_layer.unit_of_work import ExportUnitOfWork
from vtp_export.settings import ExportSettings
from vtp_export.worker.runner import Exporter
from vtp_runtime.http.app import build_app
from vtp_runtime.periodic import periodic
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ExportSettings | None = None) -> FastAPI:
    settings = settings or ExportSettings()
    runtime = ServiceRuntime(settings, __version__)
    sessions = runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    relay = runtime.use_outbox()
    store = runtime.use_storage()

    def new_uow() -> ExportUnitOfWork:
        return ExportUnitOfWork(sessions, settings.service_name, relay)

    jobs = JobsClient(settings.jobs_url, settings.datasets_url)
    toolchains = Toolchains(settings.export_toolchain_pythons, timeout=settings.export_toolchain_probe_seconds)
    runtime.parts.on_startup.append(toolchains.probe)
    runtime.parts.on_shutdown.append(toolchains.aclose)
    runtime.parts.on_shutdown.append(jobs.aclose)
    runtime.parts.background.append(
        periodic(
            "export lease watchdog",
            settings.export_watchdog_seconds,
            lambda: requeue_expired(new_uow, settings.export_max_attempts),
        )
    )
    if settings.exporter_enabled:
        exporter = Exporter(settings, new_uow, store, toolchains, dead_letters=runtime.dead_letters)
        runtime.parts.background += exporter.background()
        runtime.parts.on_shutdown.append(exporter.shutdown)  # hooks run in reverse: before the database closes
    deps = Deps(new_uow, jobs, toolchains, store, settings.export_debug_options)
    runtime.parts.routers = [build_router(deps)]
    return build_app(runtime.parts)
