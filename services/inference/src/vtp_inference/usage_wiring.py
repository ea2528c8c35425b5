"""Composition of usage metering: the meter, its flush loop and pruning, its routes (see bootstrap)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_inference.adapters.usage_store import PostgresUsageStore
from vtp_inference.entrypoints.usage_http import build_usage_router
from vtp_inference.service_layer.access import Access
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_inference.settings import InferenceSettings
from vtp_runtime.periodic import periodic
from vtp_runtime.service import ServiceRuntime

FLUSH_RECORDS_KEPT = timedelta(days=7)  # a batch is retried only by its own (live) replica


def use_usage(
    runtime: ServiceRuntime,
    sessions: async_sessionmaker[AsyncSession],
    new_uow: NewUow,
    settings: InferenceSettings,
    access: Access,
) -> tuple[Meter, APIRouter]:
    """The replica's meter (flushed every `usage_flush_seconds` and once more at shutdown) and the usage routes."""
    store = PostgresUsageStore(sessions)
    meter = Meter(store, enabled=settings.usage_enabled)
    minutes_kept = timedelta(days=settings.usage_minute_retention_days)
    runtime.parts.background += [
        periodic("usage flush", settings.usage_flush_seconds, meter.flush, first_after=settings.usage_flush_seconds),
        periodic("usage pruning", 3600.0, lambda: store.prune(minutes_kept, FLUSH_RECORDS_KEPT), first_after=60.0),
    ]
    # Shutdown hooks run in reverse order after the background tasks stopped: this one runs
    # before the database engine (registered earlier) is disposed.
    runtime.parts.on_shutdown.append(meter.final_flush)
    return meter, build_usage_router(new_uow, store, access)
