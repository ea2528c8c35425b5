"""From a succeeded export to a model this service can load: fetch, verify, check, store.

The package is downloaded with the caller's token and verified against the sha256 the export
service recorded; the model file inside is loaded and probed once (its interface must be the
one metadata.json declares), then stored under this service's own key with its sha256, which
every replica verifies before loading it. Each preparation stores its files under keys of its own
and loads the model into an external runtime (Triton) under a key of its own (`runtime_key`, the
deployment id and a random part, recorded in the model), so releasing what one preparation staged
never deletes a file or unloads a Triton model that another one, of the same export for the same
deployment, is about to commit. What it puts in place (the files, the model Triton loaded) is
recorded in `staged` as it goes: the caller releases it unless it commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp_inference.adapters.exports_client import ExportsClient, PackageRejected
from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.runtimes import ModelInvalid
from vtp_inference.domain.model import Deployment
from vtp_inference.service_layer.releasing import Staged
from vtp_inference.service_layer.tasks import TASKS, prober, task_meta
from vtp_runtime.storage import ObjectStore, StorageError


@dataclass(frozen=True)
class Prepared:
    model: dict[str, Any]  # uri, sha256, size_bytes
    meta: dict[str, Any]  # names, imgsz, task


TRITON_CONFIG = "triton/model/config.pbtxt"  # the export's Triton repository (ONNX exports)


def _unpack(path: Path, max_bytes: int, triton: bool = False) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """metadata.json and the model's files: `model.onnx` (and for Triton the export's config.pbtxt),
    or the OpenVINO IR's xml and bin."""
    try:
        with zipfile.ZipFile(path) as package:
            meta = json.loads(package.read("metadata.json"))
            model_file, listed = str(meta["model_file"]), package.namelist()
            if model_file in listed:
                names = [model_file]
            else:  # a directory: the OpenVINO IR
                folder = model_file.rstrip("/") + "/"
                xml = next(n for n in listed if n.startswith(folder) and n.endswith(".xml"))
                names = [xml, xml.removesuffix(".xml") + ".bin"]
            if triton:
                names.append(TRITON_CONFIG)
            infos = [package.getinfo(n) for n in names]
            if sum(i.file_size for i in infos) > max_bytes:  # declared sizes: a zip bomb stops here
                raise PackageRejected("PACKAGE_TOO_LARGE", f"the model files exceed {max_bytes} bytes")
            return meta, [(Path(i.filename).name, package.read(i)) for i in infos]
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, StopIteration) as exc:
        raise PackageRejected("PACKAGE_INVALID", f"the package has no readable metadata or model: {exc}") from exc


async def prepare(
    exports: ExportsClient,
    store: ObjectStore,
    cache: ModelCache,
    token: str,
    export: dict[str, Any],
    deployment: Deployment,
    max_bytes: int,
    staged: Staged,
) -> Prepared:
    with tempfile.TemporaryDirectory(prefix="vtp-deploy-") as tmp:
        path = Path(tmp) / "package.zip"
        await exports.download(token, export, path, max_bytes)
        meta, files = await asyncio.to_thread(_unpack, path, max_bytes, deployment.runtime == "triton")
    task = meta.get("task")
    if task != "detect" and task not in TASKS:
        raise PackageRejected("TASK_NOT_SUPPORTED", f"the package's task is {task!r}")
    names = {str(k): str(v) for k, v in (meta.get("names") or {}).items()}
    imgsz = int(meta["input"]["imgsz"])
    try:
        extra = task_meta(meta)
    except ValueError as exc:
        raise PackageRejected("PACKAGE_INVALID", str(exc)) from exc
    probe = None if task == "detect" else prober(str(task), extra, imgsz, len(names))
    shas = [hashlib.sha256(data).hexdigest() for _, data in files]
    attempt = uuid.uuid4().hex[:8]  # this preparation's own keys
    runtime_key = f"{deployment.id}-{attempt}"
    try:
        files_only = [data for _, data in files]
        staged.models.append((runtime_key, shas[0]))  # an external runtime may hold it from here, even if refused
        runtime, classes = deployment.runtime, len(names)
        await asyncio.to_thread(cache.check, runtime, files_only, imgsz, classes, runtime_key, probe_with=probe)
    except ModelInvalid as exc:
        raise PackageRejected(exc.code, str(exc)) from exc
    refs: list[dict[str, Any]] = []
    for (name, data), sha in zip(files, shas, strict=True):
        key = f"deployments/{deployment.project_id}/{deployment.id}/{export['id']}-{sha[:16]}-{attempt}/{name}"
        staged.files.append({"uri": store.uri(key)})  # before the put: a put that fails late may have stored it
        try:
            info = await store.put_bytes(key, data, "application/octet-stream")
        except StorageError as exc:
            raise PackageRejected("STORAGE_FAILED", f"the model could not be stored: {exc}") from exc
        refs.append({"uri": info.uri, "sha256": sha, "size_bytes": len(data)})
    model = {**refs[0], "weights": refs[1]} if len(refs) > 1 else refs[0]
    model["runtime_key"] = runtime_key  # where replicas load it, and what releasing it names
    dynamic = meta["input"].get("dynamic")
    return Prepared(model, {"names": names, "imgsz": imgsz, "task": task, "dynamic": dynamic, **extra})
