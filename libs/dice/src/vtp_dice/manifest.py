"""A dataset version as data: which annotation files, which image bytes.

A manifest names every blob by its SHA-256, so it is tiny next to the images,
and two manifests with the same content hash describe the same data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from vtp_dice.format import TASKS, Task, canonical_json

MANIFEST_FORMAT = "vtp-dice-manifest/1"


@dataclass(frozen=True)
class ImageEntry:
    """One image: where its bytes are (content address) and what they decode to."""

    file_name: str
    sha256: str
    size: int
    width: int  # after EXIF orientation
    height: int
    format: str  # sniffed, e.g. JPEG, PNG


@dataclass(frozen=True)
class Manifest:
    """Annotation files (canonical JSON blobs) per task, metadata blob, images by file name."""

    annotations: dict[Task, str]  # task -> sha256 of the canonical annotation file
    images: tuple[ImageEntry, ...]  # sorted by file_name
    metadata: str | None = None  # sha256 of the canonical metadata.json
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tasks(self) -> list[Task]:
        return [t for t in TASKS if t in self.annotations]

    @property
    def size_bytes(self) -> int:
        return sum(i.size for i in self.images)

    def content_hash(self) -> str:
        """SHA-256 over the canonical annotation and metadata files and the image digests."""
        identity = {
            "annotations": dict(sorted(self.annotations.items())),
            "metadata": self.metadata,
            "images": [[i.file_name, i.sha256] for i in self.images],
        }
        return hashlib.sha256(canonical_json(identity)).hexdigest()

    def image(self, file_name: str) -> ImageEntry | None:
        return self.images_by_name().get(file_name)

    def images_by_name(self) -> dict[str, ImageEntry]:
        return {i.file_name: i for i in self.images}

    def to_json(self) -> bytes:
        doc = {
            "format": MANIFEST_FORMAT,
            "content_hash": self.content_hash(),
            "annotations": dict(sorted(self.annotations.items())),
            "metadata": self.metadata,
            "images": [[i.file_name, i.sha256, i.size, i.width, i.height, i.format] for i in self.images],
            "extra": self.extra,
        }
        return canonical_json(doc)

    @staticmethod
    def from_json(data: bytes) -> Manifest:
        doc = json.loads(data)
        if doc.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"not a {MANIFEST_FORMAT} document")
        images = tuple(ImageEntry(*row) for row in doc["images"])
        manifest = Manifest(doc["annotations"], images, doc.get("metadata"), doc.get("extra", {}))
        if manifest.content_hash() != doc["content_hash"]:
            raise ValueError("manifest content hash does not match its content")
        return manifest


def blob_key(sha256: str) -> str:
    """Object-store key of a content-addressed blob (images, annotation files, metadata)."""
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def manifest_key(content_hash: str) -> str:
    return f"manifests/{content_hash}.json"
