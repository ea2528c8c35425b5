"""Composition root of the trainer runner: the runner loop beside a health endpoint."""

from pathlib import Path

from fastapi import FastAPI

from vtp_runtime.http.app import build_app
from vtp_runtime.messaging.kafka import KafkaEventPublisher
from vtp_runtime.service import ServiceRuntime
from vtp_trainer_runner import __version__
from vtp_trainer_runner.attempt import AttemptDeps
from vtp_trainer_runner.reporter import Reporter
from vtp_trainer_runner.runner import Runner
from vtp_trainer_runner.settings import TrainerRunnerSettings
from vtp_trainer_runner.spares import SparePool


def slots(settings: TrainerRunnerSettings) -> list[list[int]]:
    """One slot per `gpus_per_job` GPUs; CPU machines get `cpu_slots` slots without GPUs."""
    gpus = settings.gpu_list()
    if not gpus:
        return [[] for _ in range(settings.cpu_slots)]
    n = settings.gpus_per_job
    return [gpus[i : i + n] for i in range(0, len(gpus) - n + 1, n)]


def create_app(settings: TrainerRunnerSettings | None = None) -> FastAPI:
    settings = settings or TrainerRunnerSettings()
    runtime = ServiceRuntime(settings, __version__)
    runtime.use_kafka()
    store = runtime.use_storage()
    publisher = KafkaEventPublisher(
        settings.kafka_bootstrap_servers, idempotent=settings.kafka_idempotent_producer, client_id=settings.runner_id
    )
    runtime.parts.on_startup.append(publisher.start)
    runtime.parts.on_shutdown.append(publisher.stop)
    work = Path(settings.work_dir).absolute()
    deps = AttemptDeps(
        store=store,
        reporter=Reporter(publisher),
        runner_id=settings.runner_id,
        work_root=work / "attempts",
        cache_dir=work / "cache",
        cache_max_bytes=settings.cache_max_bytes,
        heartbeat_seconds=settings.heartbeat_seconds,
        log_flush_seconds=settings.log_flush_seconds,
    )
    runner = Runner(
        deps,
        settings.kafka_bootstrap_servers,
        settings.consumer_group,
        slots(settings),
        settings.handback_timeout_seconds,
        SparePool(work / "spares", slots(settings)) if settings.prewarm_children else None,
        dead_letters=runtime.dead_letters,
        cancel_memory_seconds=settings.cancel_memory_hours * 3600,
        finished_memory_seconds=settings.finished_memory_hours * 3600,
    )
    runtime.parts.background += runner.background()
    runtime.parts.on_shutdown.append(runner.shutdown)  # before the publisher stops (hooks run in reverse)
    return build_app(runtime.parts)
