"""Batches and access without the stack: which routes take keys, what a key sees, quota refunds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from vtp_inference.domain.batches import Batch, BatchStatus, key_may_see
from vtp_inference.domain.keys import Limits
from vtp_inference.domain.limits import Policy, PolicyState, Verdict
from vtp_inference.entrypoints.access_http import serving_path
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


def _batch(kind: str) -> Batch:
    source = {"kind": kind, "files": ["a.jpg"]}
    return Batch(
        id=uuid.uuid4(), project_id=uuid.uuid4(), deployment_id=DEPLOYMENT, key_id=None, status=BatchStatus.QUEUED,
        task_type="detect", source=source, params={}, total_images=1, chunk_size=4, created_at=datetime.now(UTC),
    )  # fmt: skip


def test_a_key_sees_zip_batches_not_snapshot_batches() -> None:
    assert key_may_see(_batch("zip"))
    assert not key_may_see(_batch("snapshot"))


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
