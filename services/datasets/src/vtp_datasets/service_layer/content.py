"""Reading and writing a version's content (docs, metadata, manifest) as blobs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vtp_datasets.adapters.blobs import BlobStore
from vtp_datasets.service_layer.ingest import BaseVersion, Inspected, image_map
from vtp_dice.format import Task, canonical_json
from vtp_dice.manifest import Manifest
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


async def store_content(blobs: BlobStore, inspected: Inspected, workers: int = 4) -> Content:
    """Copy new image bytes out of the archive, then the docs and the manifest (all deduplicated)."""

    def reader(name: str) -> Callable[[], bytes]:
        def read() -> bytes:
            data = inspected.read_image(name)
            if hashlib.sha256(data).hexdigest() != inspected.images[name].sha256:  # archive changed under us
                raise RuntimeError(f"image {name} changed while it was stored")
            return data

        return read

    await blobs.put_many([(inspected.images[n].sha256, reader(n)) for n in inspected.from_archive], workers)
    annotations: dict[Task, str] = {}
    for task, doc in sorted(inspected.docs.items()):
        annotations[task] = (await blobs.put_json(doc))[0]
    metadata_sha = (await blobs.put_json(inspected.metadata))[0] if inspected.metadata is not None else None
    manifest = Manifest(annotations, image_map(inspected.images), metadata_sha)
    await blobs.put_manifest(manifest)
    await blobs.sync()  # before any row can point at these blobs
    return Content(manifest, dict(inspected.docs), inspected.metadata)


async def load_content(blobs: BlobStore, content_hash: str) -> Content:
    manifest = await blobs.manifest(content_hash)
    docs = {task: await blobs.get_json(sha) for task, sha in manifest.annotations.items()}
    metadata = await blobs.get_json(manifest.metadata) if manifest.metadata else None
    return Content(manifest, docs, metadata)


def fingerprint(assignment: dict[str, str]) -> str:
    return hashlib.sha256(canonical_json(assignment)).hexdigest()
