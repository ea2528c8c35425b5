"""Composition root of the inference service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_inference import __version__
from vtp_inference.settings import InferenceSettings
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: InferenceSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or InferenceSettings(), __version__)
    runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    runtime.use_outbox()
    runtime.use_redis()
    runtime.use_storage()
    return build_app(runtime.parts)
