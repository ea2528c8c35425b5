"""Turn a pinned snapshot into a ready training directory, cached on local disk.

Trainers call `materialize(source, task, cache_dir, splits)` and get a YOLO directory (with
data.yaml) or an ImageFolder root. The cache under `cache_dir`:

    blobs/sha256/xx/<sha>   image bytes, shared by every snapshot: an image is fetched once
    entries/<key>/          one built layout per (content hash, task, split mapping); images in it
                            are hard links into blobs/, so a layout costs little more than its labels
    locks/, tmp/            build coordination

Builds happen in tmp/ and are renamed into place, so an entry is complete or absent. A per-key
`fcntl` lock makes concurrent callers build once; builders hold a shared cache lock that
eviction takes exclusively, so eviction never deletes blobs under a running build. A warm call
takes no lock: it touches the entry's marker (its LRU time) and returns.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from vtp_dice.convert import Plan, imagefolder_plan, local_blobs, write_plan, yolo_plan
from vtp_dice.format import ANNOTATION_FILES, METADATA_FILE, Split, Task, canonical_json
from vtp_dice.manifest import ImageEntry, Manifest, blob_key, manifest_key

GiB = 1 << 30
LAYOUT_VERSION = 1  # bump when converters change what they write: old entries then stop matching
MARKER = ".vtp-cache.json"  # inside the entry, so it appears with the rename; its mtime is the LRU time
FETCH_THREADS = 8  # fetching from an object store is latency-bound


class SnapshotSource(Protocol):
    """Where a snapshot's manifest, annotation documents and blobs come from."""

    @property
    def snapshot_id(self) -> str: ...

    @property
    def content_hash(self) -> str: ...

    def manifest(self) -> Manifest: ...

    def annotation_doc(self, task: Task) -> dict[str, Any]: ...

    def fetch_blob(self, sha256: str, dest: Path) -> None:
        """Write the blob's bytes to `dest` (the caller verifies them)."""
        ...


class DirectorySource:
    """A snapshot in a local directory laid out like the object store (manifests/, blobs/)."""

    def __init__(self, root: Path, content_hash: str, snapshot_id: str | None = None) -> None:
        self.root, self.content_hash = root, content_hash
        self.snapshot_id = snapshot_id or content_hash
        self._manifest: Manifest | None = None

    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.from_json((self.root / manifest_key(self.content_hash)).read_bytes())
        return self._manifest

    def annotation_doc(self, task: Task) -> dict[str, Any]:
        sha = self.manifest().annotations[task]
        doc: dict[str, Any] = json.loads((self.root / blob_key(sha)).read_bytes())
        return doc

    def fetch_blob(self, sha256: str, dest: Path) -> None:
        shutil.copyfile(self.root / blob_key(sha256), dest)


def _put_blob(store: Path, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = store / blob_key(sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sha


def publish_directory(dataset_root: Path, store: Path) -> Manifest:
    """Store a DICE directory (trusted input, e.g. `vtp_dice.sample`) as a manifest + blobs under `store`.

    For tests, demos and local object stores only: it canonicalises the JSON files but does not
    validate them (the datasets service does that on upload).
    """
    annotations: dict[Task, str] = {}
    for task, name in ANNOTATION_FILES.items():
        if (dataset_root / name).is_file():
            annotations[task] = _put_blob(store, canonical_json(json.loads((dataset_root / name).read_bytes())))
    metadata = None
    if (dataset_root / METADATA_FILE).is_file():
        metadata = _put_blob(store, canonical_json(json.loads((dataset_root / METADATA_FILE).read_bytes())))
    images = []
    for path in sorted(p for p in (dataset_root / "images").rglob("*") if p.is_file()):
        data = path.read_bytes()
        with Image.open(path) as im:
            # EXIF orientations 5-8 rotate by 90 degrees: DICE sizes are after orientation.
            w, h = im.size[::-1] if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else im.size
            fmt = im.format or ""
        name = path.relative_to(dataset_root / "images").as_posix()
        images.append(ImageEntry(name, _put_blob(store, data), len(data), w, h, fmt))
    manifest = Manifest(annotations, tuple(images), metadata)
    (store / "manifests").mkdir(parents=True, exist_ok=True)
    (store / manifest_key(manifest.content_hash())).write_bytes(manifest.to_json())
    return manifest


def cache_key(content_hash: str, task: Task, splits: Mapping[str, Split]) -> str:
    """Entry name for a (content hash, task, split mapping); needs no I/O, so warm calls stay cheap."""
    split_digest = hashlib.sha256(canonical_json(sorted(splits.items()))).hexdigest()
    identity = {"layout": LAYOUT_VERSION, "content_hash": content_hash, "task": task, "splits": split_digest}
    return hashlib.sha256(canonical_json(identity)).hexdigest()[:32]


@contextmanager
def _locked(path: Path, exclusive: bool) -> Iterator[None]:
    # Lock files are never deleted: unlinking one while another process waits on it breaks mutual exclusion.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _touch(entry: Path) -> bool:
    try:
        os.utime(entry / MARKER)
        return True
    except FileNotFoundError:
        return False


def _fetch(source: SnapshotSource, cache_dir: Path, sha: str) -> None:
    final = cache_dir / blob_key(sha)
    if final.exists():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / "tmp" / f"blob-{sha}-{uuid.uuid4().hex}"
    source.fetch_blob(sha, tmp)
    with open(tmp, "rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != sha:
            tmp.unlink()
            raise ValueError(f"blob {sha} fetched with different bytes")
    os.replace(tmp, final)  # atomic; a concurrent fetch of the same blob just replaces it with equal bytes


def _build(source: SnapshotSource, task: Task, splits: Mapping[str, Split], cache_dir: Path, entry: Path) -> None:
    manifest = source.manifest()
    if manifest.content_hash() != source.content_hash:
        raise ValueError(f"snapshot {source.snapshot_id}: manifest does not match its content hash")
    if task not in manifest.annotations:
        raise ValueError(f"snapshot {source.snapshot_id} has no {task} annotations")
    docs = {task: source.annotation_doc(task)}
    plan: Plan = (
        imagefolder_plan(manifest, docs, splits)
        if task == "classification"
        else yolo_plan(task, manifest, docs, splits, str(entry))
    )
    shas = sorted({e.sha256 for e in plan.images.values()})  # only what the layout uses
    (cache_dir / "tmp").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        list(pool.map(lambda sha: _fetch(source, cache_dir, sha), shas))
    tmp = cache_dir / "tmp" / f"entry-{entry.name}-{uuid.uuid4().hex}"
    write_plan(tmp, plan, local_blobs(cache_dir))
    # Bytes not shared with blobs/ (labels; images copied where linking failed) count against this entry.
    own = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file() and p.stat().st_nlink == 1)
    marker: dict[str, Any] = {"snapshot_id": source.snapshot_id, "content_hash": source.content_hash, "task": task}
    marker.update(created_at=time.time(), own_bytes=own, blobs=shas)
    (tmp / MARKER).write_text(json.dumps(marker))
    try:
        os.rename(tmp, entry)
    except OSError:  # someone else's build won (only possible if lock files were removed): keep theirs
        shutil.rmtree(tmp)
        if not (entry / MARKER).exists():
            raise


def materialize(
    source: SnapshotSource,
    task: Task,
    cache_dir: Path,
    splits: Mapping[str, Split],
    max_cache_bytes: int = 20 * GiB,
) -> Path:
    """A ready directory for `task`: YOLO (data.yaml inside) or ImageFolder (classification).

    `splits` maps every image `file_name` the task lists to its split. Cold: fetch missing blobs,
    build, then evict least-recently-used entries while the cache exceeds `max_cache_bytes`.
    """
    cache_dir = cache_dir.absolute()
    entry = cache_dir / "entries" / cache_key(source.content_hash, task, splits)
    if _touch(entry):
        return entry
    with _locked(cache_dir / "locks" / f"{entry.name}.lock", exclusive=True):
        if _touch(entry):  # built while we waited
            return entry
        with _locked(cache_dir / "locks" / "cache.lock", exclusive=False):
            entry.parent.mkdir(parents=True, exist_ok=True)
            _build(source, task, splits, cache_dir, entry)
    evict(cache_dir, max_cache_bytes, keep=entry.name)
    return entry


def evict(cache_dir: Path, max_bytes: int, keep: str | None = None) -> int:
    """Delete least-recently-used entries (and blobs no entry uses) until the cache fits; returns bytes freed."""
    with _locked(cache_dir / "locks" / "cache.lock", exclusive=True):
        blobs = {p.name: p.stat().st_size for p in (cache_dir / "blobs").rglob("*") if p.is_file()}
        entries = []  # (last used, name, own bytes, blobs)
        for marker in (cache_dir / "entries").glob(f"*/{MARKER}"):
            meta = json.loads(marker.read_text())
            entries.append((marker.stat().st_mtime, marker.parent.name, int(meta["own_bytes"]), meta["blobs"]))
        total = sum(blobs.values()) + sum(e[2] for e in entries)
        if total <= max_bytes:
            return 0
        start = total
        shutil.rmtree(cache_dir / "tmp", ignore_errors=True)  # no build runs while we hold the lock exclusively
        refs = Counter(sha for e in entries for sha in e[3])
        doomed = {sha for sha in blobs if not refs[sha]}  # left by evicted entries or failed builds
        total -= sum(blobs[s] for s in doomed)
        for _used, name, own, shas in sorted(entries):
            if total <= max_bytes:
                break
            if name == keep:
                continue
            trash = cache_dir / "tmp" / f"evict-{name}-{uuid.uuid4().hex}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(cache_dir / "entries" / name, trash)  # vanish atomically, then delete at leisure
            shutil.rmtree(trash)
            refs.subtract(shas)
            freed = {s for s in shas if refs[s] <= 0 and s in blobs} - doomed
            doomed |= freed
            total -= own + sum(blobs[s] for s in freed)
        for sha in doomed:
            (cache_dir / blob_key(sha)).unlink(missing_ok=True)
        return start - total
