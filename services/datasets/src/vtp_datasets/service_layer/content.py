"""Reading and writing a version's content (docs, metadata, manifest) as blobs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.adapters.staged_blobs import StagedBlobs
from vtp_datasets.service_layer.ingest import BaseVersion, Inspected, image_map
from vtp_dice.format import Task, canonical_json
from vtp_dice.manifest import Manifest, blob_key, manifest_key
from vtp_dice.splits import SplitConfig, assign, labeled_splits, strata_from_docs


@dataclass
class Content:
    """A version's manifest with its annotation docs and metadata loaded."""

    manifest: Manifest
    docs: dict[Task, dict[str, Any]]
    metadata: dict[str, Any] | None

    def as_base(self) -> BaseVersion:
        return BaseVersion(dict(self.docs), self.metadata, self.manifest.images_by_name())

    def resolve_splits(self, config: SplitConfig) -> dict[str, str]:
        names = [image.file_name for image in self.manifest.images]
        return dict(assign(names, labeled_splits(self.docs), strata_from_docs(self.docs), config))


def plan_content(inspected: Inspected) -> tuple[Content, dict[str, bytes]]:
    """The new version's content, and the JSON blobs (canonical docs, metadata) it adds, by SHA-256."""
    json_blobs: dict[str, bytes] = {}

    def add(doc: Any) -> str:
        data = canonical_json(doc)
        sha = hashlib.sha256(data).hexdigest()
        json_blobs[sha] = data
        return sha

    annotations = {task: add(doc) for task, doc in sorted(inspected.docs.items())}
    metadata_sha = add(inspected.metadata) if inspected.metadata is not None else None
    manifest = Manifest(annotations, image_map(inspected.images), metadata_sha)
    return Content(manifest, dict(inspected.docs), inspected.metadata), json_blobs


def written_keys(inspected: Inspected, content: Content, json_blobs: dict[str, bytes]) -> list[str]:
    """Every key `store_content` may write (what an upload leases against the orphan sweep)."""
    images = {blob_key(inspected.images[name].sha256) for name in inspected.from_archive}
    return sorted({*images, *map(blob_key, json_blobs), manifest_key(content.manifest.content_hash())})


async def store_content(
    blobs: BlobStore,
    inspected: Inspected,
    content: Content,
    json_blobs: dict[str, bytes],
    staged: StagedBlobs,
    workers: int = 4,
) -> None:
    """Publish the images staged while probing, copy any others out of the archive, then docs and manifest.

    Blobs that were already stored when probing looked are checked again here (under the caller's
    lease): the orphan sweep may have removed one since.
    """

    def reader(name: str) -> Callable[[], bytes]:
        def read() -> bytes:
            data = inspected.read_image(name)
            if hashlib.sha256(data).hexdigest() != inspected.images[name].sha256:  # archive changed under us
                raise RuntimeError(f"image {name} changed while it was stored")
            return data

        return read

    published = await staged.publish()
    rest = [n for n in inspected.from_archive if blob_key(inspected.images[n].sha256) not in published]
    await blobs.put_many([(inspected.images[n].sha256, reader(n)) for n in rest], workers)
    for sha, data in json_blobs.items():
        await blobs.put(sha, data, "application/json")
    await blobs.put_manifest(content.manifest)
    await blobs.sync()  # before any row can point at these blobs


async def load_content(blobs: BlobStore, content_hash: str) -> Content:
    manifest = await blobs.manifest(content_hash)
    docs = {task: await blobs.get_json(sha) for task, sha in manifest.annotations.items()}
    metadata = await blobs.get_json(manifest.metadata) if manifest.metadata else None
    return Content(manifest, docs, metadata)


def fingerprint(assignment: dict[str, str]) -> str:
    return hashlib.sha256(canonical_json(assignment)).hexdigest()
