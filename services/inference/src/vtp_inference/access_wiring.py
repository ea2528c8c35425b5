"""Composition of API keys and rate limits: the access checks, their caches' invalidation, the routes."""

from __future__ import annotations

import redis.asyncio as aioredis
from fastapi import APIRouter

from vtp_inference.adapters.key_changes import KeyChanges
from vtp_inference.adapters.key_repository import SqlAccessStore
from vtp_inference.adapters.rate_limiter import RedisRateLimiter
from vtp_inference.entrypoints.access_http import key_verifier
from vtp_inference.entrypoints.keys_http import build_keys_router
from vtp_inference.service_layer.access import Access, AccessSettings
from vtp_inference.service_layer.keys import KeyDeps
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_inference.settings import InferenceSettings
from vtp_runtime.periodic import periodic
from vtp_runtime.service import ServiceRuntime
from vtp_runtime.supervision import Background


def use_access(runtime: ServiceRuntime, new_uow: NewUow, settings: InferenceSettings) -> tuple[Access, APIRouter]:
    """The replica's `Access` (API keys accepted on serving routes by the auth middleware) and the keys routes."""
    url = settings.rate_limit_redis_url or settings.redis_url
    if runtime.sessions is None:
        raise RuntimeError("use_database() comes before use_access()")
    if not url:
        raise RuntimeError("inference needs VTP_REDIS_URL")
    # Its own client with short timeouts: an unreachable Redis must fail a check fast (fail open or closed).
    timeout = settings.rate_limit_timeout_seconds
    redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    access = Access(
        SqlAccessStore(runtime.sessions),
        RedisRateLimiter(redis),
        runtime.parts.verifier,
        AccessSettings(
            key_cache_seconds=settings.key_cache_seconds,
            fail_open=settings.rate_limit_fail_mode == "open",
            redis_timeout_seconds=timeout,
            concurrency_lease_seconds=settings.concurrency_lease_seconds,
        ),
    )
    changes = KeyChanges(redis)
    runtime.parts.scoped_verifier = key_verifier(access)
    runtime.parts.background += [
        Background("access changes", changes.listener(access.forget)),
        periodic("key last use", settings.key_last_used_flush_seconds, access.flush_last_used),
    ]
    runtime.parts.on_shutdown += [access.flush_last_used, redis.aclose]
    return access, build_keys_router(KeyDeps(new_uow, access, changes))
