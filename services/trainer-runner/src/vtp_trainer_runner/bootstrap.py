"""Composition root of the trainer runner: adapters wired into the app."""

from fastapi import FastAPI

from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime
from vtp_trainer_runner import __version__
from vtp_trainer_runner.settings import TrainerRunnerSettings


def create_app(settings: TrainerRunnerSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or TrainerRunnerSettings(), __version__)
    runtime.use_kafka()
    runtime.use_storage()
    return build_app(runtime.parts)
