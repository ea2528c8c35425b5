"""Model files and Triton models are released when nothing references them any more (service layer, fakes).

A prepared model that is not committed (a name taken, a refused probe, a deployment deleted meanwhile)
leaves no file and no Triton model behind; a committed change releases what it stops referencing (the
model two switches back, a canary ended by a switch, a rollback or the traffic route, a deleted
deployment's models) and keeps what is still referenced elsewhere; a failed release never fails the
request, and the orphan sweep releases it later, sparing what is younger than its grace.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vtp_inference.adapters.exports_client import ExportNotFound
from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.runtimes import RuntimeUnavailable
from vtp_inference.adapters.triton_repository import TritonRepository
from vtp_inference.domain.model import Deployment, DeploymentNotFound, NameTaken, RequestRefused, Status
from vtp_inference.domain.model_refs import files_of, models_of
from vtp_inference.domain.traffic import Share
from vtp_inference.service_layer.commands import DeploymentRequest, Deps, create_deployment, delete_deployment
from vtp_inference.service_layer.sweeping import Held, sweep_orphans
from vtp_inference.service_layer.switching import rollback, switch_export
from vtp_inference.service_layer.traffic import set_traffic
from vtp_runtime.auth import Principal
from vtp_runtime.storage import ObjectInfo, StorageError

TOKEN = "token"


class FakeStore:
    """Object storage in memory, with each object's time of writing."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.failing = False

    def uri(self, key: str) -> str:
        return f"s3://models/{key}"

    def parse_uri(self, uri: str) -> str:
        if not uri.startswith("s3://models/"):
            raise StorageError(f"not in this bucket: {uri}")
        return uri.removeprefix("s3://models/")

    async def put_bytes(self, key: str, data: bytes, content_type: str = "") -> ObjectInfo:
        self.objects[key] = (data, datetime.now(UTC))
        return ObjectInfo(key, self.uri(key), len(data), None, content_type)

    async def delete(self, key: str) -> None:
        if self.failing:
            raise StorageError("object storage is down")
        self.objects.pop(key, None)

    async def list_modified(self, prefix: str = "") -> list[tuple[str, datetime]]:
        return sorted((k, t) for k, (_, t) in self.objects.items() if k.startswith(prefix))


class FakeModel:
    platform, input_name, output_name = "fake", "images", "output0"
    input_shape, output_shape = [1, 3, 32, 32], [1, 6, 8]

    def __init__(self, broken: bool) -> None:
        self.broken = broken

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.full((1, 6, 8), np.nan if self.broken else 0.0, np.float32)


class FakeTriton:
    """An external runtime: what it holds, by (deployment key, sha256 prefix), since when."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], datetime] = {}
        self.down = False

    def load(self, files: list[bytes], key: str) -> FakeModel:
        self.held[(key, hashlib.sha256(files[0]).hexdigest()[:12])] = datetime.now(UTC)
        return FakeModel(broken=files[0].startswith(b"broken"))

    def release(self, key: str, model_sha256: str) -> None:
        if self.down:
            raise RuntimeUnavailable("Triton is unreachable")
        self.held.pop((key, model_sha256[:12]), None)

    def listing(self) -> list[Held]:
        return [Held("triton", key, sha, when) for (key, sha), when in self.held.items()]


class FakeExports:
    def __init__(self) -> None:
        self.exports: dict[uuid.UUID, dict[str, Any]] = {}
        self.during_download: Callable[[], Awaitable[None]] | None = None

    def add(self, broken: bool = False) -> uuid.UUID:
        export_id = uuid.uuid4()
        version = len(self.exports) + 1
        self.exports[export_id] = {"id": str(export_id), "status": "succeeded", "parity": {"passed": True},
                                   "task_type": "detect", "format": "onnx", "version": version,
                                   "broken": broken}  # fmt: skip
        return export_id

    async def get(self, token: str, export_id: uuid.UUID) -> dict[str, Any]:
        if export_id not in self.exports:
            raise ExportNotFound(str(export_id))
        return self.exports[export_id]

    async def download(self, token: str, export: dict[str, Any], dest: Path, max_bytes: int) -> None:
        meta = {"model_file": "model.onnx", "task": "detect", "names": {"0": "a", "1": "b"}, "input": {"imgsz": 32}}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as package:
            package.writestr("metadata.json", json.dumps(meta))
            package.writestr("model.onnx", (b"broken-" if export["broken"] else b"model-") + export["id"].encode())
            package.writestr("triton/model/config.pbtxt", 'input [ { name: "images" } ]')
        await asyncio.to_thread(dest.write_bytes, buffer.getvalue())
        if self.during_download is not None:
            hook, self.during_download = self.during_download, None
            await hook()


class FakeDb:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Deployment] = {}


class FakeRepo:
    """Reads see committed rows and this transaction's own writes; writes wait for the commit."""

    def __init__(self, db: FakeDb, pending: dict[uuid.UUID, Deployment]) -> None:
        self._db, self._pending = db, pending

    def _rows(self) -> list[Deployment]:
        return list({**self._db.rows, **self._pending}.values())

    async def add(self, deployment: Deployment) -> None:
        await self.save(deployment)

    async def save(self, deployment: Deployment) -> None:
        if deployment.deleted_at is None and any(
            d.id != deployment.id and d.project_id == deployment.project_id and d.name == deployment.name
            for d in self._rows()
            if d.deleted_at is None
        ):
            raise NameTaken(deployment.name)
        self._pending[deployment.id] = copy.deepcopy(deployment)

    async def get(self, project_id: uuid.UUID, deployment_id: uuid.UUID, *, lock: bool = False) -> Deployment | None:
        found = [d for d in self._rows() if d.id == deployment_id and d.project_id == project_id]
        return copy.deepcopy(found[0]) if found and found[0].deleted_at is None else None

    async def referencing(self, deployment_id: uuid.UUID, uris: list[str]) -> list[Deployment]:
        def names(d: Deployment) -> bool:
            return any(ref["uri"] in uris for m in models_of(d) for ref in files_of(m))

        return [copy.deepcopy(d) for d in self._rows() if d.deleted_at is None and (d.id == deployment_id or names(d))]

    async def live(self) -> list[Deployment]:
        return [copy.deepcopy(d) for d in self._rows() if d.deleted_at is None]


class FakeUow:
    def __init__(self, db: FakeDb) -> None:
        self._db = db
        self._pending: dict[uuid.UUID, Deployment] = {}
        self.repo = FakeRepo(db, self._pending)

    async def __aenter__(self) -> FakeUow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._pending.clear()

    async def publish(self, spec: object, data: object) -> str:
        return "event"

    async def commit(self) -> None:
        self._db.rows.update(self._pending)
        self._pending.clear()


class Env:
    def __init__(self) -> None:
        self.db, self.store, self.triton, self.exports = FakeDb(), FakeStore(), FakeTriton(), FakeExports()
        cache = ModelCache(self.store, 1 << 30, 1, external={"triton": self.triton})  # type: ignore[arg-type, dict-item]
        self.deps = Deps(lambda: FakeUow(self.db), self.exports, self.store, cache, 1 << 20)  # type: ignore[arg-type, return-value]
        self.caller = Principal(uuid.uuid4(), uuid.uuid4())

    async def create(self, export_id: uuid.UUID | None = None, name: str | None = None) -> Deployment:
        wanted = DeploymentRequest(
            export_id or self.exports.add(), name or uuid.uuid4().hex[:8], "triton", 0.25, 0.7, 9
        )
        return await create_deployment(self.deps, self.caller, TOKEN, wanted)

    def stored(self) -> set[str]:
        return {self.store.uri(k) for k in self.store.objects}

    def referenced(self) -> set[str]:
        return {ref["uri"] for d in self.db.rows.values() if d.deleted_at is None
                for m in models_of(d) for ref in files_of(m)}  # fmt: skip

    def served(self) -> set[tuple[str, str]]:
        return {(str(d.id), m["sha256"][:12]) for d in self.db.rows.values() if d.deleted_at is None
                for m in models_of(d)}  # fmt: skip

    def nothing_left_over(self) -> bool:
        """Every stored file and every Triton model is one a live deployment references."""
        return self.stored() == self.referenced() and set(self.triton.held) == self.served()


async def test_a_refused_switch_leaves_no_file_and_no_triton_model_behind():
    env = Env()
    kept = await env.create()
    taken = await env.create()
    before = (env.stored(), set(env.triton.held))
    assert kept.status == Status.READY and len(before[0]) == 4 and len(before[1]) == 2

    with pytest.raises(NameTaken):  # prepared, then refused at the commit: both or neither
        await switch_export(env.deps, env.caller, TOKEN, kept.id, env.exports.add(), {"name": taken.name})
    assert (env.stored(), set(env.triton.held)) == before

    with pytest.raises(RequestRefused) as refused:  # loaded in Triton, then the probe refuses it
        await switch_export(env.deps, env.caller, TOKEN, kept.id, env.exports.add(broken=True))
    assert refused.value.problems[0].code == "export_rejected"
    assert (env.stored(), set(env.triton.held)) == before

    async def delete_it() -> None:  # a concurrent change: deleted while the switch prepares
        await delete_deployment(env.deps, env.caller, kept.id)

    env.exports.during_download = delete_it
    with pytest.raises(DeploymentNotFound):
        await switch_export(env.deps, env.caller, TOKEN, kept.id, env.exports.add())
    assert env.nothing_left_over() and len(env.stored()) == 2  # `taken`'s two files only


async def test_a_refused_split_leaves_nothing_behind():
    env = Env()
    d = await env.create()
    with pytest.raises(RequestRefused):
        await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(d.export_id, 80), Share(env.exports.add(True), 20)])
    assert env.nothing_left_over() and len(env.stored()) == 2


async def test_a_creation_refused_or_deleted_meanwhile_leaves_nothing_behind():
    env = Env()
    failed = await env.create(env.exports.add(broken=True))
    assert failed.status == Status.FAILED and failed.error_code == "MODEL_INVALID"
    assert env.nothing_left_over() and not env.stored() and not env.triton.held

    async def delete_it() -> None:
        [creating] = [d for d in env.db.rows.values() if d.status == Status.CREATING and d.deleted_at is None]
        await delete_deployment(env.deps, env.caller, creating.id)

    env.exports.during_download = delete_it
    await env.create()
    assert env.nothing_left_over() and not env.stored() and not env.triton.held


async def test_committed_changes_release_what_they_stop_referencing():
    env = Env()
    first, second, third, canary = (env.exports.add() for _ in range(4))
    d = await env.create(first)
    await switch_export(env.deps, env.caller, TOKEN, d.id, second)
    await switch_export(env.deps, env.caller, TOKEN, d.id, third)  # `first` is two switches back: released
    assert env.nothing_left_over() and len(env.stored()) == 4

    split = await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 80), Share(canary, 20)])
    files = {ref["uri"] for ref in files_of((split.canary or {})["model"])}
    reweighed = await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 70), Share(canary, 30)])
    assert (reweighed.canary or {})["model"] == (split.canary or {})["model"] and files <= env.stored()  # reused
    assert env.nothing_left_over() and len(env.stored()) == 6

    await switch_export(env.deps, env.caller, TOKEN, d.id, first)  # ends the split: the canary goes, and `second`
    assert env.nothing_left_over() and not files & env.stored() and len(env.stored()) == 4

    await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(first, 50), Share(canary, 50)])
    assert len(env.stored()) == 6
    back = await rollback(env.deps, env.caller, d.id)  # ends the split too
    assert back.export_id == third and back.canary is None
    assert env.nothing_left_over() and len(env.stored()) == 4

    await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 50), Share(canary, 50)])
    await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 100)])  # the traffic route ends it
    assert env.nothing_left_over() and len(env.stored()) == 4

    await delete_deployment(env.deps, env.caller, d.id)
    assert not env.stored() and not env.triton.held


async def test_deleting_a_deployment_keeps_files_another_deployment_references():
    env = Env()
    a, b = await env.create(), await env.create()
    shared = env.db.rows[a.id].model
    env.db.rows[b.id].previous = {"export_id": str(a.export_id), "export_version": 1, "model": shared, "model_meta": {}}
    await delete_deployment(env.deps, env.caller, a.id)
    assert {ref["uri"] for ref in files_of(shared)} <= env.stored()  # still referenced by b
    assert env.stored() == env.referenced() and len(env.stored()) == 4
    assert set(env.triton.held) == {(str(b.id), (b.model or {})["sha256"][:12])}  # a's Triton copy was a's alone


async def test_a_failed_release_never_fails_the_request_and_the_sweep_releases_it_later():
    env = Env()
    first, second, third = (env.exports.add() for _ in range(3))
    d = await env.create(first)
    await switch_export(env.deps, env.caller, TOKEN, d.id, second)
    env.store.failing, env.triton.down = True, True
    switched = await switch_export(env.deps, env.caller, TOKEN, d.id, third)  # `first` cannot be released now
    assert switched.export_id == third
    assert not env.nothing_left_over() and len(env.stored()) == 6
    env.store.failing, env.triton.down = False, False

    now = datetime.now(UTC)
    young = await sweep_orphans(env.deps, 3600, env.triton.listing, now=now)  # within the grace: kept
    assert (young.files, young.models) == (0, 0)
    swept = await sweep_orphans(env.deps, 3600, env.triton.listing, now=now + timedelta(hours=2))
    assert (swept.files, swept.models) == (2, 1)
    assert env.nothing_left_over() and len(env.stored()) == 4

    await env.store.put_bytes("deployments/p/d/x-0/model.onnx", b"left by a dead replica")
    env.store.objects["batches/p/b/rows.jsonl"] = (b"{}", now - timedelta(days=9))  # not a model: never swept
    env.db.rows[d.id].canary = {"model": {"uri": "s3://elsewhere/k", "sha256": "00" * 32}}  # names nothing here
    swept = await sweep_orphans(env.deps, 3600, env.triton.listing, now=now + timedelta(hours=2))
    assert swept.files == 1 and "batches/p/b/rows.jsonl" in env.store.objects


def test_the_triton_repository_lists_its_models_by_deployment_and_sha(tmp_path: Path):
    repository = TritonRepository(tmp_path)
    key = str(uuid.uuid4())
    (tmp_path / f"vtp-{key}-0123456789ab" / "1").mkdir(parents=True)
    (tmp_path / f".tmp-vtp-{key}-0123456789ab-1a2b3c4d").mkdir()  # being written: not a model yet
    (tmp_path / "someone-elses-model").mkdir()
    [(found, sha, written)] = repository.held()
    assert (found, sha) == (key, "0123456789ab") and written <= datetime.now(UTC)
    assert TritonRepository(tmp_path / "missing").held() == []
