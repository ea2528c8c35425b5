"""From a succeeded export to a model this service can load: fetch, verify, check, store.

The package is downloaded with the caller's token and verified against the sha256 the export
service recorded; the model file inside is loaded and probed once (its interface must be the
one metadata.json declares), then stored under this service's own key with its sha256, which
every replica verifies before loading it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp_inference.adapters.exports_client import ExportsClient, PackageRejected
from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.onnx_runtime import ModelInvalid
from vtp_inference.domain.model import Deployment
from vtp_runtime.storage import ObjectStore, StorageError


@dataclass(frozen=True)
class Prepared:
    model: dict[str, Any]  # uri, sha256, size_bytes
    meta: dict[str, Any]  # names, imgsz, task


def _unpack(path: Path, max_bytes: int) -> tuple[dict[str, Any], bytes]:
    try:
        with zipfile.ZipFile(path) as package:
            meta = json.loads(package.read("metadata.json"))
            info = package.getinfo(str(meta["model_file"]))
            if info.file_size > max_bytes:  # the declared size: a zip bomb stops here
                raise PackageRejected("PACKAGE_TOO_LARGE", f"the model file exceeds {max_bytes} bytes")
            return meta, package.read(info)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise PackageRejected("PACKAGE_INVALID", f"the package has no readable metadata or model: {exc}") from exc


async def prepare(
    exports: ExportsClient,
    store: ObjectStore,
    cache: ModelCache,
    token: str,
    export: dict[str, Any],
    deployment: Deployment,
    max_bytes: int,
) -> Prepared:
    with tempfile.TemporaryDirectory(prefix="vtp-deploy-") as tmp:
        path = Path(tmp) / "package.zip"
        await exports.download(token, export, path, max_bytes)
        meta, data = await asyncio.to_thread(_unpack, path, max_bytes)
    if meta.get("task") != "detect":
        raise PackageRejected("TASK_NOT_SUPPORTED", f"the package's task is {meta.get('task')!r}")
    names = {str(k): str(v) for k, v in (meta.get("names") or {}).items()}
    imgsz = int(meta["input"]["imgsz"])
    try:
        await asyncio.to_thread(cache.check, data, imgsz, len(names))
    except ModelInvalid as exc:
        raise PackageRejected("MODEL_INVALID", str(exc)) from exc
    sha = hashlib.sha256(data).hexdigest()
    key = f"deployments/{deployment.project_id}/{deployment.id}/{sha[:16]}/model.onnx"
    try:
        info = await store.put_bytes(key, data, "application/octet-stream")
    except StorageError as exc:
        raise PackageRejected("STORAGE_FAILED", f"the model could not be stored: {exc}") from exc
    model = {"uri": info.uri, "sha256": sha, "size_bytes": len(data)}
    return Prepared(model, {"names": names, "imgsz": imgsz, "task": "detect", "dynamic": meta["input"].get("dynamic")})
