"""Who may serve a request, and whether its limits admit it: API keys and rate limits.

Every serving entry point (predict, OIP REST, gRPC, batch submission) calls `authenticate` (or lets
the auth middleware do it with `verify`) and then `admit` per request; `admission.release()` when
done, `admission.refund()` when an admitted request could not be carried out (its images given back).
Keys are cached per replica for `key_cache_seconds`; a revocation or rotation reaches every
replica through the limiter's per-key end (checked in the same Redis round trip as the limits)
and a pub/sub message that drops the cached copy.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from redis.exceptions import RedisError

from vtp_inference.domain.keys import PREDICT, ApiKey, KeyPrincipal, Limits, looks_like_key
from vtp_inference.domain.limits import CONCURRENT, QUOTA, Policy, Verdict, headers, policies
from vtp_runtime.auth import Principal, TokenVerifier, VerifierUnavailable, hash_token
from vtp_runtime.metrics import METRICS

_log = logging.getLogger(__name__)
NEGATIVE_TTL_SECONDS = 5.0


class AccessStore(Protocol):
    async def key_by_hash(self, key_hash: str) -> ApiKey | None: ...
    async def limits_of(self, deployment_id: uuid.UUID) -> Limits | None: ...
    async def touch(self, last_used: dict[uuid.UUID, datetime]) -> None: ...


class Limiter(Protocol):
    async def acquire(self, found: list[Policy], key_id: uuid.UUID | None, images: int, member: str) -> Verdict: ...
    async def release(self, found: list[Policy], member: str) -> None: ...
    async def refund(self, found: list[Policy], images: int) -> None: ...
    async def end_key(self, key_id: uuid.UUID, at_epoch_ms: int) -> None: ...


class AccessError(Exception):
    """A refused request: HTTP status, stable problem code, and headers to send."""

    status, code, title = 401, "invalid_key", "Invalid API key"

    def __init__(self, message: str, headers: dict[str, str] | None = None, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.retry_after = retry_after


class Unauthenticated(AccessError):
    pass


class KeyForbidden(AccessError):
    status, code, title = 403, "key_forbidden", "The API key does not allow this"


class RateLimited(AccessError):
    status, code, title = 429, "rate_limited", "Too many requests"


class AccessUnavailable(AccessError):
    status, code, title = 503, "rate_limit_unavailable", "Rate limits cannot be checked"


@dataclass
class Admission:
    headers: dict[str, str] = field(default_factory=dict)
    _release: Callable[[], Awaitable[None]] | None = None
    _refund: Callable[[], Awaitable[None]] | None = None
    windows: tuple[str, ...] = ()  # the quota states its images were taken from (a batch records them)

    async def release(self) -> None:
        """Free the request's concurrent slots (if any); errors are logged, never raised."""
        if self._release is not None:
            release, self._release = self._release, None
            try:
                await release()
            except (RedisError, OSError, TimeoutError) as exc:  # the slot's lease frees it later
                _log.warning("could not free a concurrent slot: %s", exc)

    async def refund(self) -> None:
        """Give the request's images back to its quotas (admitted, then not carried out); logged, never raised."""
        if self._refund is not None:
            refund, self._refund = self._refund, None
            try:
                await refund()
            except (RedisError, OSError, TimeoutError) as exc:  # the quota stays taken: errs on the safe side
                _log.warning("could not give images back to a quota: %s", exc)


@dataclass(frozen=True)
class AccessSettings:
    key_cache_seconds: float = 30.0
    limits_cache_seconds: float = 5.0
    fail_open: bool = True
    redis_timeout_seconds: float = 1.0
    concurrency_lease_seconds: float = 300.0


class Access:
    def __init__(self, store: AccessStore, limiter: Limiter, tokens: TokenVerifier, settings: AccessSettings) -> None:
        self._store, self._limiter, self._tokens, self._s = store, limiter, tokens, settings
        self._keys: dict[str, tuple[float, ApiKey | None]] = {}  # key hash -> (until, key)
        self._limits: dict[uuid.UUID, tuple[float, Limits]] = {}
        self._last_used: dict[uuid.UUID, datetime] = {}
        self._last_warning = 0.0

    # -- authentication ------------------------------------------------------------------------
    async def verify(self, credential: str) -> Principal | None:
        """An API key's principal, or None (unknown, revoked, expired): the auth middleware's key verifier."""
        if not looks_like_key(credential):
            return None
        digest, now = hash_token(credential), time.monotonic()
        hit = self._keys.get(digest)
        if hit is None or hit[0] <= now:
            key = await self._store.key_by_hash(digest)
            ttl = self._s.key_cache_seconds if key else min(self._s.key_cache_seconds, NEGATIVE_TTL_SECONDS)
            hit = (now + ttl, key)
            self._keys[digest] = hit
        key, wall = hit[1], datetime.now(UTC)
        if key is None or not key.usable(wall):
            return None
        self._last_used[key.id] = wall
        return KeyPrincipal(project_id=key.project_id, token_id=key.id, key=key)

    async def authenticate(self, credential: str) -> Principal:
        """A project token's or an API key's principal (entry points without the auth middleware: gRPC)."""
        try:
            found = await (self.verify(credential) if looks_like_key(credential) else self._tokens.verify(credential))
        except VerifierUnavailable as exc:
            raise AccessUnavailable(str(exc)) from exc
        if found is None:
            raise Unauthenticated("the token or key is unknown, revoked or expired")
        return found

    def require_scope(self, principal: Principal, scope: str, deployment_id: uuid.UUID) -> None:
        """A key must hold `scope` and reach the deployment; a project token may do anything in its project."""
        if isinstance(principal, KeyPrincipal):
            if scope not in principal.scopes:
                raise KeyForbidden(f"the key lacks the {scope!r} scope")
            if not principal.key.reaches(deployment_id):
                raise KeyForbidden("the key does not reach this deployment")

    def forget(self, kind: str, ident: str) -> None:
        """Drop a cached key (after a revocation or rotation) or a deployment's cached limits."""
        if kind == "key":
            self._keys = {h: v for h, v in self._keys.items() if v[1] is None or str(v[1].id) != ident}
        elif kind == "limits":
            self._limits.pop(uuid.UUID(ident), None)

    # -- limits ----------------------------------------------------------------------------------
    async def admit(self, principal: Principal, deployment_id: uuid.UUID, images: int) -> Admission:
        """Take one request (of `images` images) from every budget that applies, or raise."""
        key = principal.key if isinstance(principal, KeyPrincipal) else None
        self.require_scope(principal, PREDICT, deployment_id)
        now, lease = datetime.now(UTC), self._s.concurrency_lease_seconds
        found = policies("deployment", deployment_id, await self._deployment_limits(deployment_id), now, lease)
        if key is not None:
            found += policies("key", key.id, key.limits, now, lease)
        if not found and key is None:
            return Admission()
        member = uuid.uuid4().hex if any(p.kind == CONCURRENT for p in found) else ""
        try:
            async with asyncio.timeout(self._s.redis_timeout_seconds):  # no extra task, unlike wait_for
                verdict = await self._limiter.acquire(found, key.id if key else None, images, member)
        except (RedisError, OSError, TimeoutError) as exc:
            return self._unavailable(exc)
        if verdict.ended and key is not None:
            self.forget("key", str(key.id))
            raise Unauthenticated("the key was revoked or has expired")
        sent = headers(verdict)
        if not verdict.allowed:
            over = [s.policy.name for s in verdict.states if s.remaining < s.policy.cost(images)]
            METRICS.inc("vtp_inference_rate_limited_total", policy=over[0] if over else "unknown")
            raise RateLimited(f"over the limit: {', '.join(over)}", sent, verdict.retry_after)
        release = (lambda: self._limiter.release(found, member)) if member else None
        quotas = [p for p in found if p.kind == QUOTA]
        refund = (lambda: self._limiter.refund(quotas, images)) if quotas and images else None
        windows = tuple(p.store_key for p in quotas) if refund else ()
        return Admission(sent, release, refund, windows)

    def _unavailable(self, exc: BaseException) -> Admission:
        METRICS.inc("vtp_inference_rate_limit_unavailable_total", mode="open" if self._s.fail_open else "closed")
        if time.monotonic() - self._last_warning > 10:  # one line per 10 s, not one per request
            self._last_warning = time.monotonic()
            _log.warning("rate limits unavailable (%r); failing %s", exc, "open" if self._s.fail_open else "closed")
        if not self._s.fail_open:
            raise AccessUnavailable("the rate limit store is unreachable") from exc
        return Admission()

    async def _deployment_limits(self, deployment_id: uuid.UUID) -> Limits:
        hit = self._limits.get(deployment_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        limits = await self._store.limits_of(deployment_id) or Limits()
        self._limits[deployment_id] = (time.monotonic() + self._s.limits_cache_seconds, limits)
        return limits

    async def end_key(self, key_id: uuid.UUID, at: datetime | None) -> None:
        """Refuse a key on every replica from `at` (None: now)."""
        self.forget("key", str(key_id))
        await self._limiter.end_key(key_id, int(at.timestamp() * 1000) if at else 0)

    async def flush_last_used(self) -> None:
        """Write the keys' last use in one statement (periodic: no database write per request)."""
        batch, self._last_used = self._last_used, {}
        if batch:
            await self._store.touch(batch)
