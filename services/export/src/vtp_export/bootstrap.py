"""Composition root of the export service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_export import __version__
from vtp_export.settings import ExportSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ExportSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or ExportSettings(), __version__)
    runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    runtime.use_outbox()
    runtime.use_storage()
    return build_app(runtime.parts)
