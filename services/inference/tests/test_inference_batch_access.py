"""Batches and access without the stack: which routes take keys, who reads which batches, quota refunds
and the windows a batch records."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from vtp_inference.domain.batches import Reader
from vtp_inference.domain.keys import ApiKey, KeyPrincipal, Limits
from vtp_inference.domain.limits import Policy, PolicyState, Verdict
from vtp_inference.entrypoints.access_http import serving_path
from vtp_inference.entrypoints.batches_http import reader_of
from vtp_inference.service_layer.access import Access, AccessSettings
from vtp_runtime.auth import Principal

DEPLOYMENT = uuid.uuid4()


def test_keys_are_taken_on_a_deployments_batch_routes_and_no_other_management_route() -> None:
    base = f"/api/v1/deployments/{DEPLOYMENT}"
    for path in ("/batches", "/batches/", "/batches/b1", "/batches/b1/cancel", "/batches/b1/results"):
        assert serving_path(base + path), path
    for path in ("", "/keys", "/limits", "/batches/b1/other", "/batches/b1/results/x", "/switch"):
        assert not serving_path(base + path), path
    assert not serving_path("/api/v1/batches")


def _key(project_id: uuid.UUID, limits: Limits | None = None) -> KeyPrincipal:
    key = ApiKey(
        id=uuid.uuid4(), project_id=project_id, name="k", prefix="vtpk_x", key_hash="h", scopes=frozenset({"predict"}),
        deployments=None, limits=limits or Limits(), created_at=datetime.now(UTC),
    )  # fmt: skip
    return KeyPrincipal(project_id=project_id, token_id=key.id, key=key)


def test_a_project_token_reads_its_projects_batches_and_a_key_its_own() -> None:
    project = uuid.uuid4()
    assert reader_of(Principal(project, uuid.uuid4())) == Reader(project, None)
    key = _key(project)
    assert reader_of(key) == Reader(project, key.key_id)


class Store:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    async def key_by_hash(self, key_hash: str) -> None:
        return None

    async def limits_of(self, deployment_id: uuid.UUID) -> Limits:
        return self.limits

    async def touch(self, last_used: dict[uuid.UUID, datetime]) -> None:
        return None


class Limiter:
    """Admits everything; records what is given back."""

    def __init__(self) -> None:
        self.refunds: list[tuple[list[str], int]] = []

    async def acquire(self, found: list[Policy], key_id: uuid.UUID | None, images: int, member: str) -> Verdict:
        return Verdict(True, tuple(PolicyState(p, p.limit - p.cost(images), 1.0) for p in found))

    async def release(self, found: list[Policy], member: str) -> None:
        return None

    async def refund(self, found: list[Policy], images: int) -> None:
        self.refunds.append(([p.name for p in found], images))

    async def end_key(self, key_id: uuid.UUID, at_epoch_ms: int) -> None:
        return None


class Tokens:
    async def verify(self, token: str) -> Principal | None:
        return None


def test_an_admitted_request_gives_its_images_back_to_the_quotas_only_and_once() -> None:
    limiter = Limiter()
    caller = Principal(uuid.uuid4(), uuid.uuid4())

    async def run() -> None:
        limits = Limits(per_second=5, images_per_day=100, images_per_month=1000)
        access = Access(Store(limits), limiter, Tokens(), AccessSettings())
        admission = await access.admit(caller, DEPLOYMENT, 7)
        assert 'deployment-images-per-day";r=93' in admission.headers["RateLimit"]
        await admission.refund()
        await admission.refund()  # a second call gives nothing back again
        assert limiter.refunds == [(["deployment-images-per-day", "deployment-images-per-month"], 7)]

        buckets_only = Access(Store(Limits(per_second=5)), limiter, Tokens(), AccessSettings())
        await (await buckets_only.admit(caller, DEPLOYMENT, 7)).refund()  # no quota: nothing to give back
        assert len(limiter.refunds) == 1

    asyncio.run(run())


def test_an_admission_names_the_quota_windows_its_images_were_taken_from() -> None:
    project = uuid.uuid4()
    key = _key(project, Limits(images_per_month=100))

    async def run() -> None:
        access = Access(Store(Limits(per_second=5, images_per_day=50)), Limiter(), Tokens(), AccessSettings())
        windows = (await access.admit(key, DEPLOYMENT, 3)).windows
        day, month = datetime.now(UTC).strftime("%Y-%m-%d"), datetime.now(UTC).strftime("%Y-%m")
        assert windows == (
            f"vtp:inference:rl:deployment:{DEPLOYMENT}:d:{day}",
            f"vtp:inference:rl:key:{key.key_id}:mo:{month}",
        )
        buckets_only = Access(Store(Limits(per_second=5)), Limiter(), Tokens(), AccessSettings())
        assert (await buckets_only.admit(Principal(project, uuid.uuid4()), DEPLOYMENT, 3)).windows == ()

    asyncio.run(run())
