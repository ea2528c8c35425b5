"""Access checks with hand-written fakes: key verification and caching, scopes, limits, fail open/closed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from vtp_inference.domain.keys import PREDICT, USAGE_READ, ApiKey, KeyPrincipal, Limits, new_secret, rotate
from vtp_inference.domain.limits import BUCKET, Policy, PolicyState, Verdict, headers, policies
from vtp_inference.service_layer.access import (
    Access,
    AccessSettings,
    AccessUnavailable,
    KeyForbidden,
    RateLimited,
    Unauthenticated,
)
from vtp_runtime.auth import Principal, hash_token

PROJECT = uuid.uuid4()
DEPLOYMENT = uuid.uuid4()


def _key(secret: str, **changes: object) -> ApiKey:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "project_id": PROJECT,
        "name": "k",
        "prefix": secret[:12],
        "key_hash": hash_token(secret),
        "scopes": frozenset({PREDICT}),
        "deployments": frozenset({DEPLOYMENT}),
        "limits": Limits(),
        "created_at": datetime.now(UTC),
    }
    values.update(changes)
    return ApiKey(**values)  # type: ignore[arg-type]


class FakeStore:
    def __init__(self, *keys: ApiKey, limits: Limits | None = None) -> None:
        self.keys = {k.key_hash: k for k in keys}
        self.limits = limits
        self.lookups = 0
        self.touched: list[dict[uuid.UUID, datetime]] = []

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        return self.keys.get(key_hash)

    async def limits_of(self, deployment_id: uuid.UUID) -> Limits | None:
        return self.limits

    async def touch(self, last_used: dict[uuid.UUID, datetime]) -> None:
        self.touched.append(last_used)


class FakeLimiter:
    """Admits while `budget` lasts; `down` raises like an unreachable Redis."""

    def __init__(self, budget: int = 1000, down: bool = False) -> None:
        self.budget, self.down = budget, down
        self.ended: dict[uuid.UUID, int] = {}
        self.released: list[str] = []

    async def acquire(self, found: list[Policy], key_id: uuid.UUID | None, images: int, member: str) -> Verdict:
        if self.down:
            raise RedisConnectionError("connection refused")
        if key_id in self.ended:
            return Verdict(False, ended=True)
        self.budget -= 1
        states = tuple(PolicyState(p, self.budget, 1.0) for p in found)
        return Verdict(self.budget >= 0, states, 0.0 if self.budget >= 0 else 0.4)

    async def release(self, found: list[Policy], member: str) -> None:
        self.released.append(member)

    async def refund(self, found: list[Policy], images: int) -> None:
        return None  # the budget counts requests, not images

    async def end_key(self, key_id: uuid.UUID, at_epoch_ms: int) -> None:
        self.ended[key_id] = at_epoch_ms


class FakeTokens:
    async def verify(self, token: str) -> Principal | None:
        return Principal(PROJECT, uuid.uuid4()) if token == "vtp_good_project_token_123" else None


def _access(store: FakeStore, limiter: FakeLimiter, fail_open: bool = True) -> Access:
    return Access(store, limiter, FakeTokens(), AccessSettings(fail_open=fail_open, redis_timeout_seconds=0.5))


def test_a_key_is_verified_once_then_served_from_the_cache_and_revocation_drops_it():
    secret = new_secret()
    key = _key(secret)
    store, limiter = FakeStore(key), FakeLimiter()
    access = _access(store, limiter)

    async def run() -> None:
        first = await access.verify(secret)
        assert isinstance(first, KeyPrincipal) and first.key_id == key.id and first.project_id == PROJECT
        assert not first.is_admin
        await access.verify(secret)
        assert store.lookups == 1
        await access.end_key(key.id, None)
        with pytest.raises(Unauthenticated):
            await access.admit(first, DEPLOYMENT, 1)
        assert await access.verify("vtpk_" + "x" * 40) is None
        assert await access.verify("not a key") is None
        await access.flush_last_used()
        assert key.id in store.touched[0]

    asyncio.run(run())


def test_expired_and_revoked_keys_are_refused():
    expired, revoked = new_secret(), new_secret()
    past = datetime.now(UTC) - timedelta(seconds=1)
    store = FakeStore(_key(expired, expires_at=past), _key(revoked, revoked_at=past))
    access = _access(store, FakeLimiter())

    async def run() -> None:
        assert await access.verify(expired) is None
        assert await access.verify(revoked) is None
        with pytest.raises(Unauthenticated):
            await access.authenticate(revoked)
        assert (await access.authenticate("vtp_good_project_token_123")).project_id == PROJECT

    asyncio.run(run())


def test_scopes_deployments_and_limits():
    secret = new_secret()
    key = _key(secret, limits=Limits(per_second=1))
    limiter = FakeLimiter(budget=1)
    access = _access(FakeStore(key), limiter)

    async def run() -> None:
        principal = await access.verify(secret)
        assert principal is not None
        with pytest.raises(KeyForbidden):
            await access.admit(principal, uuid.uuid4(), 1)  # another deployment
        with pytest.raises(KeyForbidden):
            access.require_scope(principal, USAGE_READ, DEPLOYMENT)
        admitted = await access.admit(principal, DEPLOYMENT, 1)
        assert admitted.headers["RateLimit-Policy"] == '"key-per-second";q=1;w=1'
        with pytest.raises(RateLimited) as refused:
            await access.admit(principal, DEPLOYMENT, 1)
        assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "1"
        # A project token is not limited when the deployment has no limits: no round trip at all.
        token = await access.authenticate("vtp_good_project_token_123")
        assert (await access.admit(token, DEPLOYMENT, 1)).headers == {}

    asyncio.run(run())


@pytest.mark.parametrize("fail_open", [True, False])
def test_an_unreachable_limiter_fails_open_or_closed(fail_open: bool):
    access = _access(FakeStore(limits=Limits(per_second=5)), FakeLimiter(down=True), fail_open=fail_open)
    token = Principal(PROJECT, uuid.uuid4())

    async def run() -> None:
        if fail_open:
            assert (await access.admit(token, DEPLOYMENT, 1)).headers == {}
        else:
            with pytest.raises(AccessUnavailable) as refused:
                await access.admit(token, DEPLOYMENT, 1)
            assert refused.value.status == 503 and refused.value.code == "rate_limit_unavailable"

    asyncio.run(run())


def test_rotation_keeps_the_old_key_until_the_overlap_ends():
    now = datetime.now(UTC)
    old = _key(new_secret(), expires_at=now + timedelta(days=30))
    secret = new_secret()
    ending, successor = rotate(old, uuid.uuid4(), secret, now, timedelta(hours=1))
    assert ending.expires_at == now + timedelta(hours=1) and ending.rotated_to == successor.id
    assert successor.key_hash == hash_token(secret) and successor.expires_at == old.expires_at
    assert successor.scopes == old.scopes and successor.deployments == old.deployments


def test_policies_and_headers():
    now = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    found = policies("deployment", DEPLOYMENT, Limits(per_minute=60, images_per_day=10, concurrent=2), now, 300)
    assert [p.name for p in found] == ["deployment-per-minute", "deployment-concurrent", "deployment-images-per-day"]
    assert found[2].window == 3600 and found[2].store_key.endswith(":d:2026-12-31")
    verdict = Verdict(True, tuple(PolicyState(p, 3, 12.2) for p in found))
    sent = headers(verdict)
    assert sent["RateLimit-Policy"] == (
        '"deployment-per-minute";q=60;w=60, "deployment-concurrent";q=2;qu="concurrent-requests", '
        '"deployment-images-per-day";q=10;w=86400;qu="images"'
    )
    assert sent["RateLimit"].startswith('"deployment-per-minute";r=3;t=13') and "Retry-After" not in sent
    assert Policy("x", BUCKET, 1, 1.0, "k").cost(5) == 1
