"""Composition root of the datasets service: adapters wired into the app."""

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from vtp_datasets import __version__
from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.entrypoints.background import orphan_sweeper
from vtp_datasets.entrypoints.http import build_router
from vtp_datasets.entrypoints.snapshot_files import build_snapshot_files_router
from vtp_datasets.service_layer.handlers import Deps
from vtp_datasets.service_layer.unit_of_work import DatasetsUnitOfWork
from vtp_datasets.settings import DatasetsSettings
from vtp_dice.archive import ArchiveLimits
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def archive_limits(settings: DatasetsSettings) -> ArchiveLimits:
    return ArchiveLimits(
        max_entries=settings.max_archive_entries,
        max_total_uncompressed=settings.max_uncompressed_bytes,
        max_compression_ratio=settings.max_compression_ratio,
        max_json_bytes=settings.max_json_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_problems=settings.max_problems,
    )


def create_app(settings: DatasetsSettings | None = None) -> FastAPI:
    settings = settings or DatasetsSettings()
    runtime = ServiceRuntime(settings, __version__)
    sessions = runtime.use_database(MIGRATIONS)
    runtime.use_kafka()
    relay = runtime.use_outbox()
    store = runtime.use_storage()
    deps = Deps(
        new_uow=lambda: DatasetsUnitOfWork(sessions, settings.service_name, relay),
        blobs=BlobStore(store),
        limits=archive_limits(settings),
        probe_workers=settings.probe_workers,
    )
    if settings.blob_gc_interval_seconds > 0:
        grace = timedelta(hours=settings.blob_gc_grace_hours)
        runtime.parts.background.append(
            orphan_sweeper(deps.new_uow, deps.blobs, settings.blob_gc_interval_seconds, grace)
        )
    upload_dir = Path(settings.upload_dir)
    runtime.parts.routers = [
        build_router(deps, upload_dir, settings.max_upload_bytes),
        build_snapshot_files_router(deps),
    ]
    return build_app(runtime.parts)
