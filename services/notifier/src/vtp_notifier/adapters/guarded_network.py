"""Name resolution and an httpcore network backend that only connects to allowed addresses.

Checking a URL when it is registered is not enough: its DNS may later answer with an
internal address (DNS rebinding). The backend resolves the name itself at connect time,
checks every address and then connects to a checked IP, so no second lookup can differ.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import httpcore

from vtp_notifier.domain.targets import TargetNotAllowed, TargetPolicy

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself); OSError if none."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Wraps httpcore's anyio backend: resolve, refuse internal targets, connect to the IP."""

    def __init__(self, policy: TargetPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        self._policy.check(addresses)
        error: Exception | None = None
        for address in addresses:  # TLS still verifies the certificate against the host name
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # check() refused an empty list
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise TargetNotAllowed("webhooks never connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
