"""Composition root of the jobs service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_jobs import __version__
from vtp_jobs.settings import JobsSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: JobsSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or JobsSettings(), __version__)
    runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    runtime.use_outbox()
    return build_app(runtime.parts)
