"""Composition root of the inference service: adapters wired into the app."""

from pathlib import Path

from fastapi import FastAPI

from vtp_inference import __version__
from vtp_inference.access_wiring import use_access
from vtp_inference.adapters.exports_client import ExportsClient
from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.batch_wiring import use_batches
from vtp_inference.entrypoints.changes import change_watcher
from vtp_inference.entrypoints.grpc_server import grpc_server
from vtp_inference.entrypoints.http import build_router
from vtp_inference.entrypoints.oip_grpc import OipServicer
from vtp_inference.entrypoints.oip_http import PUBLIC, build_oip_router
from vtp_inference.entrypoints.predict_http import build_predict_router
from vtp_inference.predict.images import Limits
from vtp_inference.runtime_wiring import use_runtimes
from vtp_inference.service_layer.commands import Deps, fail_stale_creating
from vtp_inference.service_layer.cores import CoreScheduler
from vtp_inference.service_layer.predicting import Predictor
from vtp_inference.service_layer.unit_of_work import InferenceUnitOfWork
from vtp_inference.settings import InferenceSettings
from vtp_inference.sweep_wiring import use_orphan_sweep
from vtp_inference.usage_wiring import use_usage
from vtp_runtime.http.app import build_app
from vtp_runtime.periodic import periodic
from vtp_runtime.service import ServiceRuntime
from vtp_runtime.supervision import Background

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: InferenceSettings | None = None) -> FastAPI:
    settings = settings or InferenceSettings()
    runtime = ServiceRuntime(settings, __version__)
    sessions = runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    relay = runtime.use_outbox()
    runtime.use_redis()
    store = runtime.use_storage()

    def new_uow() -> InferenceUnitOfWork:
        return InferenceUnitOfWork(sessions, settings.service_name, relay)

    exports = ExportsClient(settings.export_url)
    external, wrap = use_runtimes(runtime, settings)
    adaptive = settings.inference_threading == "adaptive"
    cache = ModelCache(store, settings.model_cache_bytes, settings.threads_per_session(), external, wrap, adaptive)
    deps = Deps(new_uow, exports, store, cache, settings.max_package_bytes)
    use_orphan_sweep(runtime, deps, settings)
    cores = CoreScheduler(settings.concurrent_jobs(), adaptive)
    predictor = Predictor(deps, Limits(settings.max_image_bytes, settings.max_image_pixels), cores)

    access, keys_router = use_access(runtime, new_uow, settings)
    meter, usage_router = use_usage(runtime, sessions, new_uow, settings, access)
    batches_router = use_batches(runtime, new_uow, store, predictor, meter, settings, access)

    async def close_predictor() -> None:
        predictor.close()

    runtime.parts.on_shutdown += [exports.aclose, close_predictor]
    watcher = change_watcher(settings.kafka_bootstrap_servers, cache, settings.service_name)
    runtime.parts.background += [
        Background("deployment changes", watcher),
        periodic(
            "creating watchdog",
            60.0,
            lambda: fail_stale_creating(new_uow, settings.creating_timeout_seconds),
        ),
    ]
    if settings.grpc_port:
        servicer = OipServicer(predictor, new_uow, access, meter)
        server = grpc_server(servicer, settings.http_host, settings.grpc_port, settings.grpc_max_message_bytes)
        runtime.parts.background.append(server)
    runtime.parts.routers = [
        build_router(deps),
        build_predict_router(predictor, settings.max_images, settings.max_image_bytes, meter, access),
        build_oip_router(predictor, meter, access),
        usage_router,
        keys_router,
        batches_router,
    ]
    runtime.parts.public_paths = PUBLIC
    return build_app(runtime.parts)
