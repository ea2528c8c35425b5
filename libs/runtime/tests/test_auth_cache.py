"""The token cache: one lookup per token per TTL, short memory for rejections."""

from __future__ import annotations

import asyncio

from fakes import GOOD_TOKEN, FakeVerifier

from vtp_runtime.auth import CachingVerifier, hash_token, new_token
from vtp_runtime.auth.tokens import looks_like_token


async def test_good_token_is_looked_up_once_within_ttl():
    inner = FakeVerifier()
    cache = CachingVerifier(inner, ttl=60)
    first = await cache.verify(GOOD_TOKEN)
    assert first is not None
    assert await cache.verify(GOOD_TOKEN) == first
    assert inner.calls == 1


async def test_expired_entry_is_checked_again():
    inner = FakeVerifier()
    cache = CachingVerifier(inner, ttl=0.05)
    await cache.verify(GOOD_TOKEN)
    await asyncio.sleep(0.1)
    await cache.verify(GOOD_TOKEN)
    assert inner.calls == 2


async def test_junk_never_reaches_the_verifier():
    inner = FakeVerifier()
    cache = CachingVerifier(inner)
    assert await cache.verify("not-a-token") is None
    assert await cache.verify("vtp_" + "x" * 500) is None
    assert inner.calls == 0


async def test_cache_is_bounded_and_forgets_on_request():
    inner = FakeVerifier()
    cache = CachingVerifier(inner, ttl=60, max_entries=2)
    for i in range(5):
        await cache.verify(f"vtp_unknown_token_{i:04d}")
    assert len(cache._cache) == 2
    await cache.verify(GOOD_TOKEN)
    cache.forget(hash_token(GOOD_TOKEN))
    await cache.verify(GOOD_TOKEN)
    assert inner.calls == 7


def test_new_tokens_are_unique_and_well_formed():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(looks_like_token(t) for t in tokens)
    assert len(hash_token(next(iter(tokens)))) == 64
