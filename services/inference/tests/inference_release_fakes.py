"""Hand-written fakes of what releasing model files and Triton models touches (shared by the release tests):
object storage with times of writing, an external runtime (Triton) with what it holds, the exports
service's packages, and a database whose reads see only committed rows (and the transaction's own)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vtp_inference.adapters.exports_client import ExportNotFound
from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.runtimes import RuntimeUnavailable
from vtp_inference.domain.model import Deployment, NameTaken
from vtp_inference.domain.model_refs import files_of, models_of, runtime_key
from vtp_inference.service_layer.commands import DeploymentRequest, Deps, create_deployment
from vtp_inference.service_layer.sweeping import Held
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
        self.before_release: Callable[[], None] | None = None  # once, in the releasing thread: an interleaving

    def load(self, files: list[bytes], key: str) -> FakeModel:
        self.held[(key, hashlib.sha256(files[0]).hexdigest()[:12])] = datetime.now(UTC)
        return FakeModel(broken=files[0].startswith(b"broken"))

    def release(self, key: str, model_sha256: str) -> None:
        if self.before_release is not None:
            hook, self.before_release = self.before_release, None
            hook()
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
        return {(runtime_key(d.id, m), m["sha256"][:12]) for d in self.db.rows.values() if d.deleted_at is None
                for m in models_of(d)}  # fmt: skip

    def nothing_left_over(self) -> bool:
        """Every stored file and every Triton model is one a live deployment references."""
        return self.stored() == self.referenced() and set(self.triton.held) == self.served()
