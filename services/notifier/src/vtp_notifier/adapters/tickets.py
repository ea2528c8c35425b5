"""Short-lived, single-use WebSocket tickets for browsers (which cannot set headers on a socket).

A client with a token asks for a ticket and puts it in the socket URL
(`/api/v1/ws?ticket=...`). Only the ticket's SHA-256 is stored, in Redis with a
TTL, and it is consumed atomically (GETDEL), so a leaked URL is worthless after
the first use or after a few seconds.
"""

from __future__ import annotations

import json
import secrets
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from vtp_runtime.auth import Principal, VerifierUnavailable, hash_token

TICKET_PREFIX = "wst_"
_KEY = "vtp:ws-ticket:"


class RedisTicketStore:
    """Issues tickets for a principal and redeems them once (a TokenVerifier for query tickets)."""

    def __init__(self, client: aioredis.Redis, ttl_seconds: float) -> None:
        self._client = client
        self.ttl_seconds = ttl_seconds

    async def issue(self, principal: Principal) -> str:
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        value = json.dumps({"project_id": str(principal.project_id), "token_id": str(principal.token_id)})
        try:
            await self._client.set(_KEY + hash_token(ticket), value, px=int(self.ttl_seconds * 1000))
        except RedisError as exc:
            raise VerifierUnavailable(f"ticket store unavailable: {exc}") from exc
        return ticket

    async def verify(self, token: str) -> Principal | None:
        """The principal a ticket was issued to, once; None when unknown, used or expired."""
        if not token.startswith(TICKET_PREFIX) or len(token) > 100:
            return None
        try:
            raw = await self._client.getdel(_KEY + hash_token(token))
        except RedisError as exc:
            raise VerifierUnavailable(f"ticket store unavailable: {exc}") from exc
        if raw is None:
            return None
        data = json.loads(raw)
        # Tickets never carry admin rights: a browser feed is always one project's.
        return Principal(project_id=UUID(data["project_id"]), token_id=UUID(data["token_id"]))
