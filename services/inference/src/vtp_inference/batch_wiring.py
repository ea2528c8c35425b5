"""Composition of batch inference: the routes, this replica's worker, the lease watchdog, and the
quota returns of batches that end unfinished (the rate limits' Redis)."""

from __future__ import annotations

import os
import socket
import uuid

import redis.asyncio as aioredis
from fastapi import APIRouter

from vtp_dice.archive import ArchiveLimits
from vtp_inference.adapters.datasets_client import DatasetsClient
from vtp_inference.adapters.quota_returns import RedisQuotaReturns
from vtp_inference.entrypoints.batch_deps import BatchApiDeps
from vtp_inference.entrypoints.batch_worker import BatchWorker
from vtp_inference.entrypoints.batches_http import build_batches_router
from vtp_inference.predict.images import Limits
from vtp_inference.service_layer import batch_lifecycle, batch_quota
from vtp_inference.service_layer.access import Access
from vtp_inference.service_layer.batch_run import BatchDeps
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.predicting import Predictor
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_inference.settings import InferenceSettings
from vtp_runtime.periodic import periodic
from vtp_runtime.service import ServiceRuntime
from vtp_runtime.storage import ObjectStore


def use_batches(
    runtime: ServiceRuntime,
    new_uow: NewUow,
    store: ObjectStore,
    predictor: Predictor,
    meter: Meter,
    settings: InferenceSettings,
    access: Access,
) -> APIRouter:
    s = settings
    image_limits = Limits(s.max_image_bytes, s.max_image_pixels)
    archive_limits = ArchiveLimits(
        max_entries=s.batch_max_images + 1000,
        max_total_uncompressed=s.batch_max_upload_bytes * 4,
        max_image_bytes=s.max_image_bytes,
        max_image_pixels=s.max_image_pixels,
    )
    owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    timeout = s.rate_limit_timeout_seconds
    url = s.rate_limit_redis_url or s.redis_url or ""  # the limiter's Redis, where the quotas live
    redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    runtime.parts.on_shutdown.append(redis.aclose)
    quota = RedisQuotaReturns(redis)
    deps = BatchDeps(
        new_uow, store, predictor, meter, archive_limits, owner, s.batch_lease_seconds, s.batch_heartbeat_seconds,
        quota,
    )  # fmt: skip

    async def watchdog() -> None:
        await batch_lifecycle.requeue_expired(new_uow, s.batch_max_attempts)
        await batch_quota.sweep(new_uow, quota)  # what a lost worker's or a crashed replica's batch owes

    if s.batch_slots:
        worker = BatchWorker(deps, s.kafka_bootstrap_servers, s.batch_slots, runtime.dead_letters)
        runtime.parts.background.append(worker.background())
    runtime.parts.background.append(periodic("batch lease watchdog", s.batch_watchdog_seconds, watchdog))
    datasets = DatasetsClient(s.datasets_url)  # finds snapshot sources with the caller's credentials
    runtime.parts.on_shutdown.append(datasets.aclose)
    api = BatchApiDeps(
        new_uow, store, datasets, predictor, archive_limits, image_limits, s.batch_max_images, s.batch_max_upload_bytes,
        s.batch_chunk_size, access, meter, quota,
    )  # fmt: skip
    return build_batches_router(api)
