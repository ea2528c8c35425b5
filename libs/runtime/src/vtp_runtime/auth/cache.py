"""A per-process TTL cache in front of any TokenVerifier.

A verified token is trusted for `ttl` seconds, so most requests cost no round
trip; revoking a token takes effect within that TTL. Rejections are cached
briefly so a flood of bad tokens does not hammer the identity service.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from vtp_runtime.auth.principal import Principal, TokenVerifier
from vtp_runtime.auth.tokens import hash_token, looks_like_token

NEGATIVE_TTL_SECONDS = 5.0


class CachingVerifier:
    """LRU + TTL cache keyed by the token's digest (raw tokens are not kept)."""

    def __init__(self, inner: TokenVerifier, ttl: float = 30.0, max_entries: int = 10_000) -> None:
        self._inner = inner
        self._ttl = ttl
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def verify(self, token: str) -> Principal | None:
        if not looks_like_token(token):
            return None
        key = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        principal = await self._inner.verify(token)
        ttl = self._ttl if principal else min(self._ttl, NEGATIVE_TTL_SECONDS)
        self._cache[key] = (now + ttl, principal)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return principal

    def forget(self, token_hash: str) -> None:
        """Drop one cached answer (after a local revocation)."""
        self._cache.pop(token_hash, None)
