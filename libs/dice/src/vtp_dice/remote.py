"""A snapshot read through the datasets service's public REST API (for trainers anywhere).

Implements :class:`vtp_dice.materialize.SnapshotSource` with the standard library
only, so a trainer needs no platform code beyond this package and a token.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from vtp_dice.format import Task, canonical_json
from vtp_dice.manifest import Manifest

CHUNK = 1 << 20


class RestSnapshotSource:
    """GET .../snapshots/{id}/manifest once, then blobs by SHA-256, each verified."""

    def __init__(self, base_url: str, token: str, dataset_id: str, snapshot_id: str, timeout: float = 120) -> None:
        self._base = f"{base_url.rstrip('/')}/api/v1/datasets/{dataset_id}/snapshots/{snapshot_id}"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._snapshot_id = snapshot_id
        self._manifest: Manifest | None = None
        self._splits: dict[str, str] = {}

    @property
    def snapshot_id(self) -> str:
        return self._snapshot_id

    @property
    def content_hash(self) -> str:
        return self.manifest().content_hash()

    def manifest(self) -> Manifest:
        if self._manifest is None:
            with self._get("/manifest") as response:
                doc: dict[str, Any] = json.load(response)
            self._manifest = Manifest.from_json(canonical_json(doc["manifest"]))  # checks its content hash
            self._splits = dict(doc["splits"])
        return self._manifest

    def splits(self) -> dict[str, str]:
        """The split assignment frozen with the snapshot (file name -> train/val/test)."""
        self.manifest()
        return dict(self._splits)

    def annotation_doc(self, task: Task) -> dict[str, Any]:
        sha = self.manifest().annotations[task]
        with self._get(f"/blobs/{sha}") as response:
            data = response.read()
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"annotation blob {sha} failed verification")
        doc: dict[str, Any] = json.loads(data)
        return doc

    def fetch_blob(self, sha256: str, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        digest = hashlib.sha256()
        with self._get(f"/blobs/{sha256}") as response, open(tmp, "wb") as out:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"blob {sha256} failed verification")
        shutil.move(tmp, dest)

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(self._base + path, headers=self._headers)
        return urllib.request.urlopen(request, timeout=self._timeout)  # the base URL comes from configuration
