"""Composition root of the notifier service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_notifier import __version__
from vtp_notifier.settings import NotifierSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or NotifierSettings(), __version__)
    runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    runtime.use_outbox()
    runtime.use_redis()
    return build_app(runtime.parts)
