"""Layouts as zips streamed on the fly: DICE (the version as uploaded), YOLO and COCO.

Memory stays around one chunk whatever the dataset size; the same version always gives the
same bytes (fixed member dates), so a download's ETag is stable.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator, Mapping

from vtp_dice.coco import coco_plan
from vtp_dice.format import ANNOTATION_FILES, METADATA_FILE, Split, Task
from vtp_dice.layout import Doc, OpenBlob, Plan
from vtp_dice.manifest import Manifest
from vtp_dice.yolo import yolo_plan

# Reproducible zips (same bytes, same ETag) need a fixed member date.
_ZIP_DATE = (2025, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


class _Sink:
    """A write-only, unseekable file: zipfile then writes data descriptors instead of seeking back,
    and what was written so far is handed out and forgotten (memory stays around one chunk)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self, at_least: int = _CHUNK // 4) -> Iterator[bytes]:
        """The buffered bytes as one chunk, once there are `at_least` of them (tiny label files coalesce)."""
        if self._size and self._size >= at_least:
            yield b"".join(self._chunks)
            self._chunks, self._size = [], 0


def _info(name: str, compress: bool, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.file_size = size  # lets zipfile choose zip64 headers up front for huge members
    return info


def stream_plan(plan: Plan, open_blob: OpenBlob) -> Iterator[bytes]:
    """A plan as zip bytes, produced on the fly: small files deflated, images stored (already compressed)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as zf:  # type: ignore[call-overload]
        for rel in plan.dirs:
            zf.writestr(_info(rel.rstrip("/") + "/", False, 0), b"")
        for rel, data in plan.files.items():
            zf.writestr(_info(rel, True, len(data)), data)
            yield from sink.drain()
        for rel, entry in plan.images.items():
            with open_blob(entry.sha256) as src, zf.open(_info(rel, False, entry.size), "w") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    yield from sink.drain()
    yield from sink.drain(at_least=1)  # the rest and the central directory


def _verified(data: bytes, sha256: str, what: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{what}: bytes do not match the manifest's SHA-256")
    return data


def iter_dice_zip(
    manifest: Manifest,
    open_blob: OpenBlob,
    annotation_bytes: Mapping[Task, bytes] | None = None,
    metadata_bytes: bytes | None = None,
) -> Iterator[bytes]:
    """The version as a DICE zip: `images/<file_name>`, each task's canonical annotation file, metadata.json.

    Annotation and metadata files are the canonical blobs themselves (read through `open_blob`
    unless given), checked against the manifest, so re-uploading the zip gives the same content hash.
    """
    plan = Plan()
    for task, sha in manifest.annotations.items():
        if annotation_bytes is not None and task in annotation_bytes:
            data = annotation_bytes[task]
        else:
            with open_blob(sha) as f:
                data = f.read()
        plan.files[ANNOTATION_FILES[task]] = _verified(data, sha, ANNOTATION_FILES[task])
    if manifest.metadata is not None:
        if metadata_bytes is None:
            with open_blob(manifest.metadata) as f:
                metadata_bytes = f.read()
        plan.files[METADATA_FILE] = _verified(metadata_bytes, manifest.metadata, METADATA_FILE)
    plan.images = {f"images/{i.file_name}": i for i in manifest.images}
    return stream_plan(plan, open_blob)


def iter_yolo_zip(
    task: Task, manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split], open_blob: OpenBlob
) -> Iterator[bytes]:
    """The YOLO layout as a zip (data.yaml without `path`, so it resolves next to itself once unzipped)."""
    return stream_plan(yolo_plan(task, manifest, docs, splits, None), open_blob)


def iter_coco_zip(
    task: Task, manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split], open_blob: OpenBlob
) -> Iterator[bytes]:
    """The COCO layout as a zip."""
    return stream_plan(coco_plan(task, manifest, docs, splits), open_blob)
