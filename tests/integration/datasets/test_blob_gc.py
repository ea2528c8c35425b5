"""Orphan blob sweep on the real stack (PostgreSQL, S3): what it deletes, what it must never touch."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.service_layer.blob_gc import blob_lease, sweep_orphans
from vtp_datasets.service_layer.unit_of_work import DatasetsUnitOfWork
from vtp_dice.manifest import blob_key, manifest_key
from vtp_localstack.stack import LocalStack
from vtp_runtime.db.engine import make_engine, make_session_factory
from vtp_runtime.storage import ObjectStore

from .conftest import upload
from .dice_builder import valid_detection

pytestmark = pytest.mark.integration
T = TypeVar("T")
DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


class Gc:
    """The service's sweep and leases, run in this process against the stack's database and bucket."""

    def __init__(self, stack: LocalStack, store: ObjectStore) -> None:
        self.url, self.store, self.blobs = stack.cfg.database_url("datasets"), store, BlobStore(store)

    def run(self, work: Callable[[Callable[[], DatasetsUnitOfWork]], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = make_engine(self.url)
            sessions = make_session_factory(engine)
            try:
                return await work(lambda: DatasetsUnitOfWork(sessions, "datasets"))
            finally:
                await engine.dispose()

        return asyncio.run(main())

    def sweep(self, grace: timedelta) -> int | None:
        # A zero grace makes every blob "old"; leases keep a realistic lifetime.
        return self.run(lambda new_uow: sweep_orphans(new_uow, self.blobs, grace, lease_ttl=HOUR))

    def orphan(self) -> str:
        data = os.urandom(64)
        sha = hashlib.sha256(data).hexdigest()
        asyncio.run(self.store.put_bytes(blob_key(sha), data))
        return blob_key(sha)

    def stored(self) -> set[str]:
        return set(asyncio.run(self.store.list_keys("")))


@pytest.fixture()
def gc(stack: LocalStack, object_store: ObjectStore) -> Gc:
    return Gc(stack, object_store)


def _snapshot_keys(admin: httpx.Client, dataset_id: str, snapshot: dict[str, Any]) -> set[str]:
    response = admin.get(f"/api/v1/datasets/{dataset_id}/snapshots/{snapshot['id']}/manifest")
    assert response.status_code == 200, response.text
    manifest = response.json()["manifest"]
    shas = {image[1] for image in manifest["images"]} | set(manifest["annotations"].values())
    shas |= {manifest["metadata"], snapshot["split_fingerprint"]} - {None}
    return {manifest_key(snapshot["content_hash"]), *map(blob_key, shas)}


def test_old_orphans_go_referenced_and_young_blobs_stay(admin: httpx.Client, gc: Gc):
    response = upload(admin, valid_detection(6, prefix=uuid.uuid4().hex[:8]).build(), f"gc-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 201, response.text
    dataset = response.json()
    snapshot = admin.post(f"/api/v1/datasets/{dataset['id']}/snapshots")
    assert snapshot.status_code == 201, snapshot.text
    referenced = _snapshot_keys(admin, dataset["id"], snapshot.json())
    orphan = gc.orphan()

    assert gc.sweep(DAY) == 0  # everything is younger than a day
    assert orphan in gc.stored()

    assert (gc.sweep(timedelta(0)) or 0) >= 1
    left = gc.stored()
    assert orphan not in left
    assert referenced <= left
    download = admin.get(f"/api/v1/datasets/{dataset['id']}/snapshots/{snapshot.json()['id']}/download")
    assert download.status_code == 200


def test_a_leased_blob_survives_until_the_lease_ends(gc: Gc):
    orphan = gc.orphan()

    async def leased(new_uow: Callable[[], DatasetsUnitOfWork]) -> int | None:
        async with blob_lease(new_uow, [orphan]):
            # What an upload reusing an old orphan does: lease, then rely on it, then commit rows.
            return await sweep_orphans(new_uow, gc.blobs, timedelta(0), lease_ttl=HOUR)

    gc.run(leased)
    assert orphan in gc.stored()
    gc.sweep(timedelta(0))
    assert orphan not in gc.stored()


def test_one_replica_sweeps_at_a_time(gc: Gc):
    orphan = gc.orphan()

    async def while_locked(new_uow: Callable[[], DatasetsUnitOfWork]) -> int | None:
        async with new_uow() as uow:
            assert await uow.leases.try_lock_sweep()
            return await sweep_orphans(new_uow, gc.blobs, timedelta(0), lease_ttl=HOUR)

    assert gc.run(while_locked) is None
    assert orphan in gc.stored()
    gc.sweep(timedelta(0))
    assert orphan not in gc.stored()
