"""Long-lived sockets re-check their token, so a revoked token does not keep a feed open for days."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vtp_notifier.service_layer.hub import ClientFeed
from vtp_runtime.auth import Principal, VerifierUnavailable

CLOSE_REVOKED = 4401  # 4000 + HTTP 401, like a refused handshake


async def watch_credential(check: Callable[[], Awaitable[Principal | None]], every: float, client: ClientFeed) -> None:
    """Close the client's feed once its token no longer verifies (revoked); runs until cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            principal = await check()
        except VerifierUnavailable:
            continue  # identity is down: keep serving and ask again later
        if principal is None or principal.project_id != client.project_id:
            client.shut(CLOSE_REVOKED, "token revoked")
            return
