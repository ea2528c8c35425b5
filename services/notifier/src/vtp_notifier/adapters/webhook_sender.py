"""Posts signed webhook bodies over one shared HTTP client and reports how each try went."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpcore
import httpx

from vtp_notifier.adapters.guarded_network import GuardedBackend
from vtp_notifier.domain.targets import TargetNotAllowed, TargetPolicy
from vtp_notifier.domain.webhooks import EXCERPT_BYTES, AttemptResult, excerpt

Origin = tuple[bytes, bytes, int | None]


@dataclass
class _Target:
    transport: httpx.AsyncHTTPTransport
    slots: asyncio.Semaphore


class TargetPools(httpx.AsyncBaseTransport):
    """One small guarded connection pool per target origin, behind one httpx client.

    A receiver gets at most `per_target` connections, so one slow receiver cannot take them
    all. Each pool stays small and never queues (callers wait in :meth:`slot` first): httpcore
    scans a pool's connections for each queued request on every state change, which costs more
    CPU than the request itself once dozens of requests share a pool.
    """

    def __init__(self, policy: TargetPolicy, per_target: int, max_targets: int = 512) -> None:
        self._backend = GuardedBackend(policy)
        self._per_target = per_target
        self._max_targets = max_targets
        self._ssl = httpx.create_ssl_context(trust_env=False)
        self._targets: OrderedDict[Origin, _Target] = OrderedDict()

    @contextlib.asynccontextmanager
    async def slot(self, url: httpx.URL) -> AsyncIterator[None]:
        """Hold one of the target's connections for a whole request and its response."""
        async with self._target(url).slots:
            yield

    def _target(self, url: httpx.URL) -> _Target:
        key = (url.raw_scheme, url.raw_host, url.port)
        target = self._targets.get(key)
        if target is None:
            transport = httpx.AsyncHTTPTransport(trust_env=False)
            # httpx has no public way to give httpcore a network backend, so the transport's pool
            # is replaced by an equivalent one that connects through the guarded backend.
            transport._pool = httpcore.AsyncConnectionPool(
                ssl_context=self._ssl,
                max_connections=self._per_target,
                max_keepalive_connections=self._per_target,
                keepalive_expiry=5.0,
                network_backend=self._backend,
            )
            target = self._targets[key] = _Target(transport, asyncio.Semaphore(self._per_target))
            self._evict()
        self._targets.move_to_end(key)
        return target

    def _evict(self) -> None:
        """Forget least recently used targets that hold no connection (ones seen long ago)."""
        for key in list(self._targets)[: max(0, len(self._targets) - self._max_targets)]:
            pool = self._targets[key].transport._pool
            if isinstance(pool, httpcore.AsyncConnectionPool) and not pool.connections:
                del self._targets[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._target(request.url).transport.handle_async_request(request)

    async def aclose(self) -> None:
        for target in self._targets.values():
            await target.transport.aclose()
        self._targets.clear()


class WebhookSender:
    """One try = one POST; 2xx is success, anything else (3xx included) a failure."""

    def __init__(self, pools: TargetPools, timeout: float) -> None:
        self._pools = pools
        self._timeout = timeout
        # Redirects are not followed (a 3xx is a failed try) and proxies from the environment are
        # ignored: a proxy would connect on our behalf, to an address nobody checked.
        self._client = httpx.AsyncClient(
            transport=pools, timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    @staticmethod
    def create(policy: TargetPolicy, timeout: float, per_target: int) -> WebhookSender:
        """A sender whose every connection is checked by :class:`GuardedBackend`."""
        return WebhookSender(TargetPools(policy, per_target), timeout)

    async def post(self, url: str, body: str, headers: dict[str, str]) -> AttemptResult:
        """Waiting for a free connection counts towards the time limit: a claim's lease covers it."""
        started_at, start = datetime.now(UTC), time.perf_counter()
        status: int | None = None
        latency = 0
        raw = b""
        try:
            async with asyncio.timeout(self._timeout), self._pools.slot(httpx.URL(url)):
                sent = time.perf_counter()
                async with self._client.stream("POST", url, content=body.encode(), headers=headers) as response:
                    status, latency = response.status_code, _ms_since(sent)
                    async for chunk in response.aiter_bytes():
                        raw += chunk
                        if len(raw) >= EXCERPT_BYTES:
                            break  # the rest is never read: a receiver cannot make us download much
        except TargetNotAllowed as exc:
            return AttemptResult(started_at, _ms_since(start), error=f"target_not_allowed: {exc}")
        except TimeoutError:
            if status is None:  # an answer whose body is slow still counts by its status
                return AttemptResult(started_at, _ms_since(start), error=f"timeout after {self._timeout:g}s")
        except httpx.HTTPError as exc:
            if status is None:
                return AttemptResult(started_at, _ms_since(start), error=f"{type(exc).__name__}: {exc}")
        return AttemptResult(started_at, latency, status, None, excerpt(raw))

    async def aclose(self) -> None:
        await self._client.aclose()


def _ms_since(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)
