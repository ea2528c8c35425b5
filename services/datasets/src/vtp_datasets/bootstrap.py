"""Composition root of the datasets service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_datasets import __version__
from vtp_datasets.settings import DatasetsSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: DatasetsSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or DatasetsSettings(), __version__)
    runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    runtime.use_outbox()
    runtime.use_storage()
    return build_app(runtime.parts)
