"""The orphan sweep on the real stack (PostgreSQL, S3, Triton and its repository directory): an orphan model
file, an orphan Triton model and a crashed write's temporary folder older than the grace go; what a live
deployment names (its current and previous models, files and Triton models) and a temporary folder younger
than the grace (a preparation writing it) stay.

The sweep runs in this process (`sweep_orphans`, the service layer function every replica runs), scoped
to what this test planted: object keys under its own deployment's prefix, Triton models and temporary
folders under its deployment's id. Unscoped, it would judge every other test's files on the shared
session stack, some of them in flight, by a grace short enough for a test. The replicas' own sweeps keep
their one-hour grace, so they never touch what is planted here (ten minutes old at most).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import tritonclient.http as triton_http

from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.triton_repository import TritonRepository
from vtp_inference.adapters.triton_runtime import TritonServer
from vtp_inference.service_layer.sweeping import Held, Swept, sweep_orphans
from vtp_inference.service_layer.unit_of_work import InferenceUnitOfWork, NewUow
from vtp_localstack import triton
from vtp_localstack.stack import LocalStack
from vtp_runtime.db.engine import make_engine, make_session_factory
from vtp_runtime.storage import ObjectStore

from .test_model_files import _files, _png
from .test_triton import _create, _store, name_in_triton

pytestmark = pytest.mark.integration
GRACE = 2.0  # seconds: short enough for a test, as the scope keeps other tests' files out of reach
OLD = timedelta(minutes=10)  # planted "old": past this test's grace, within the replicas' one hour


@pytest.fixture(scope="module")
def triton_client(stack: LocalStack) -> triton_http.InferenceServerClient:
    assert triton.available(stack.cfg), "tritonserver is not fetched: run `python -m vtp_localstack.triton fetch`"
    return triton_http.InferenceServerClient(f"{stack.cfg.host}:{stack.cfg.triton_port}")


@dataclass
class SweepDeps:
    new_uow: NewUow
    store: ObjectStore
    cache: ModelCache


def _age(path: Path, at: datetime) -> None:
    """Set the modification time of `path` and everything in it."""
    for p in [path, *path.rglob("*")]:
        os.utime(p, (at.timestamp(), at.timestamp()))


def _sweep(stack: LocalStack, store: ObjectStore, deployment_id: str, prefix: str, now: datetime) -> Swept:
    url, repository = f"{stack.cfg.host}:{stack.cfg.triton_port}", triton.model_repository(stack.cfg)
    cache = ModelCache(store, 1 << 30, 1, {"triton": TritonServer(url, repository, "python", 1)})
    ours = TritonRepository(repository)

    def held() -> list[Held]:  # this test's deployment's models only
        return [Held("triton", k, s, w) for k, s, w in ours.held() if k.startswith(deployment_id)]

    def leftovers(cutoff: datetime) -> int:
        return ours.remove_leftovers(cutoff, match=f".tmp-vtp-{deployment_id}-")

    async def main() -> Swept:
        engine = make_engine(stack.cfg.database_url("inference"))
        sessions = make_session_factory(engine)
        try:
            deps = SweepDeps(lambda: InferenceUnitOfWork(sessions, "inference"), store, cache)
            return await sweep_orphans(deps, GRACE, held, now=now, prefix=prefix, leftovers=leftovers)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _plant_model(repository: Path, live: str, name: str, client: triton_http.InferenceServerClient) -> Path:
    """A copy of a live model under another name, loaded in Triton: what a dead replica's preparation leaves."""
    folder = repository / name
    shutil.copytree(repository / live, folder)
    config = folder / "config.pbtxt"
    config.write_text(config.read_text().replace(f'name: "{live}"', f'name: "{name}"'))
    client.load_model(name)
    assert client.is_model_ready(name)
    return folder


def test_the_sweep_deletes_old_orphans_and_keeps_what_a_live_deployment_names(
    stack: LocalStack,
    admin: httpx.Client,
    triton_client: triton_http.InferenceServerClient,
    onnx_export: dict[str, Any],
    second_export: dict[str, Any],
):
    store, repository = _store(stack), triton.model_repository(stack.cfg)
    first = _create(admin, onnx_export, "triton")
    did = first["id"]
    switched = admin.patch(f"/api/v1/deployments/{did}", json={"export_id": second_export["id"]}, timeout=120)
    assert switched.status_code == 200, switched.text  # current and previous: two Triton models
    live_files, previous = _files(store, did), name_in_triton(stack, first)
    current = name_in_triton(stack, switched.json())
    assert len(live_files) == 4 and triton_client.is_model_ready(current)  # model.onnx, config.pbtxt each
    prefix = next(iter(live_files)).split(f"/{did}/")[0] + f"/{did}/"  # deployments/<project>/<deployment>/

    orphan_file = f"{prefix}orphan-0000000000000000-00000000/model.onnx"  # stored, never committed
    asyncio.run(store.put_bytes(orphan_file, b"left by a replica that died mid-preparation"))
    sha = current.rsplit("-", 1)[1]
    orphan_model = _plant_model(repository, current, f"vtp-{did}-dead0000-{sha}", triton_client)
    crashed = repository / f".tmp-vtp-{did}-dead0001-{sha}-00000001"  # a write a crash interrupted
    shutil.copytree(orphan_model, crashed)
    now = datetime.now(UTC)
    _age(orphan_model, now - OLD)
    _age(crashed, now - OLD)
    time.sleep(max(0.0, GRACE + 1.0 - (datetime.now(UTC) - now).total_seconds()))  # the orphan file ages
    now = datetime.now(UTC)
    writing = repository / f".tmp-vtp-{did}-live0002-{sha}-00000002"  # a live preparation's write, just begun
    (writing / "1").mkdir(parents=True)
    _age(writing, now)

    try:
        swept = _sweep(stack, store, did, prefix, now)
        assert (swept.files, swept.models, swept.leftovers) == (1, 1, 1), swept
        assert _files(store, did) == live_files  # the orphan file went, current and previous stayed
        assert not orphan_model.exists() and not triton_client.is_model_ready(orphan_model.name)
        assert not crashed.exists() and writing.exists()
        assert (repository / current).is_dir() and (repository / previous).is_dir()
        assert triton_client.is_model_ready(current)
        served = admin.post(
            f"/api/v1/deployments/{did}/predict", content=_png(), headers={"Content-Type": "image/png"}, timeout=60
        )
        assert served.status_code == 200, served.text
    finally:
        shutil.rmtree(writing, ignore_errors=True)
        assert admin.delete(f"/api/v1/deployments/{did}").status_code == 204
