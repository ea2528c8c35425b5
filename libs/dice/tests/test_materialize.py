"""The materialisation cache: cold builds, warm hits, shared blobs, LRU eviction, concurrency."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from vtp_dice.format import ANNOTATION_FILES, Split, Task
from vtp_dice.manifest import Manifest, blob_key
from vtp_dice.materialize import (
    MARKER,
    DirectorySource,
    cache_key,
    evict,
    materialize,
    publish_directory,
)
from vtp_dice.sample import generate


class CountingSource(DirectorySource):
    """A DirectorySource that counts (and can slow down or corrupt) blob fetches."""

    def __init__(self, root: Path, content_hash: str, delay: float = 0.0, corrupt: bool = False) -> None:
        super().__init__(root, content_hash, snapshot_id="snap-1")
        self.fetches: Counter[str] = Counter()
        self.delay, self.corrupt = delay, corrupt
        self._lock = threading.Lock()

    def fetch_blob(self, sha256: str, dest: Path) -> None:
        with self._lock:
            self.fetches[sha256] += 1
        time.sleep(self.delay)
        if self.corrupt:
            dest.write_bytes(b"not the image")
        else:
            super().fetch_blob(sha256, dest)


def _publish(tmp: Path, seed: int, images: int = 30, drop: int = 0) -> Manifest:
    """A sample dataset in a store under `tmp`; `drop` images are removed from the detection task."""
    root = generate(tmp / f"ds{seed}", images=images, seed=seed, background_fraction=0.1)
    if drop:
        path = root / ANNOTATION_FILES["detection"]
        doc = json.loads(path.read_text())
        doc["images"] = doc["images"][drop:]
        path.write_text(json.dumps(doc))
    return publish_directory(root, tmp / "store")


def _splits(manifest: Manifest, val_every: int = 4) -> dict[str, Split]:
    names = sorted(i.file_name for i in manifest.images)
    return {n: "val" if k % val_every == 0 else "train" for k, n in enumerate(names)}


def _task_shas(source: DirectorySource, task: Task, labelled_only: bool = False) -> set[str]:
    entries = source.manifest().images_by_name()
    images = source.annotation_doc(task)["images"]
    return {entries[i["file_name"]].sha256 for i in images if i["annotations"] or not labelled_only}


def _size(path: Path) -> int:
    seen: dict[tuple[int, int], int] = {}
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def test_cold_then_warm_fetches_each_blob_once(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, seed=1, drop=4)
    source = CountingSource(tmp_path / "store", manifest.content_hash())
    splits = _splits(manifest)
    entry = materialize(source, "detection", tmp_path / "cache", splits)
    # Only what the task lists: the 4 images dropped from detection are never fetched; backgrounds are.
    assert set(source.fetches) == _task_shas(source, "detection") and max(source.fetches.values()) == 1
    assert len(source.fetches) == len(manifest.images) - 4
    data = yaml.safe_load((entry / "data.yaml").read_text())
    assert data["path"] == str(entry) and (entry / data["train"]).is_dir() and (entry / MARKER).is_file()

    source.fetches.clear()
    start = time.perf_counter()
    assert materialize(source, "detection", tmp_path / "cache", splits) == entry
    assert time.perf_counter() - start < 0.5 and not source.fetches  # warm: nothing fetched, nothing rebuilt


def test_blobs_are_shared_across_tasks_splits_and_snapshots(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, seed=2)
    source = CountingSource(tmp_path / "store", manifest.content_hash())
    cache = tmp_path / "cache"
    seg = materialize(source, "segmentation", cache, _splits(manifest))
    first = sum(source.fetches.values())
    det = materialize(source, "detection", cache, _splits(manifest))
    other_split = materialize(source, "detection", cache, _splits(manifest, val_every=3))
    assert len({seg, det, other_split}) == 3 and sum(source.fetches.values()) == first
    # Images in the layouts are hard links to the one cached copy.
    image = next((det / "images" / "train").iterdir())
    assert image.stat().st_nlink >= 4  # blobs/ + three entries


def test_classification_fetches_only_labelled_images(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, seed=3)
    source = CountingSource(tmp_path / "store", manifest.content_hash())
    root = materialize(source, "classification", tmp_path / "cache", _splits(manifest))
    labelled = _task_shas(source, "classification", labelled_only=True)
    assert set(source.fetches) == labelled and len(labelled) < len(manifest.images)
    assert sorted(p.name for p in (root / "train").iterdir()) == ["circle", "square", "triangle"]
    assert sum(1 for p in root.rglob("*.jpg")) == len(labelled)


def test_lru_eviction_removes_whole_entries_and_their_blobs(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    snaps = []
    for seed in (10, 11, 12):
        manifest = _publish(tmp_path, seed=seed, images=12)
        snaps.append((CountingSource(tmp_path / "store", manifest.content_hash()), _splits(manifest)))
    (sa, spa), (sb, spb), (sc, spc) = snaps
    a = materialize(sa, "detection", cache, spa)
    b = materialize(sb, "detection", cache, spb)
    budget = int(_size(cache) * 1.25)  # room for two of these datasets, not three
    past = time.time() - 100
    os.utime(a / MARKER, (past - 10, past - 10))
    os.utime(b / MARKER, (past, past))
    assert materialize(sa, "detection", cache, spa) == a  # a warm hit makes a the most recently used
    c = materialize(sc, "detection", cache, spc, max_cache_bytes=budget)
    assert a.is_dir() and c.is_dir() and not b.exists()  # b goes: least recently used, though built after a
    blobs = {p.name for p in (cache / "blobs").rglob("*") if p.is_file()}
    assert blobs == _task_shas(sa, "detection") | _task_shas(sc, "detection")  # b's blobs went with it
    assert _size(cache) <= budget
    sb.fetches.clear()
    materialize(sb, "detection", cache, spb, max_cache_bytes=budget)
    assert sb.fetches  # coming back to b is a cold build


def test_evict_keeps_the_entry_in_use_even_over_budget(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, seed=4, images=8)
    source = DirectorySource(tmp_path / "store", manifest.content_hash())
    entry = materialize(source, "detection", tmp_path / "cache", _splits(manifest), max_cache_bytes=1)
    assert (entry / MARKER).is_file()
    assert evict(tmp_path / "cache", 1) > 0 and not entry.exists()
    assert not any(p.is_file() for p in (tmp_path / "cache" / "blobs").rglob("*"))


def test_concurrent_callers_build_once(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, seed=5)
    source = CountingSource(tmp_path / "store", manifest.content_hash(), delay=0.01)
    splits = _splits(manifest)
    with ThreadPoolExecutor(6) as pool:
        paths = list(pool.map(lambda _: materialize(source, "detection", tmp_path / "cache", splits), range(6)))
    assert len(set(paths)) == 1 and set(source.fetches.values()) == {1}
    assert [p.name for p in (tmp_path / "cache" / "entries").iterdir()] == [paths[0].name]


def test_bad_blob_bytes_fail_the_build_and_leave_no_entry(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, seed=6, images=5)
    source = CountingSource(tmp_path / "store", manifest.content_hash(), corrupt=True)
    with pytest.raises(ValueError, match="different bytes"):
        materialize(source, "detection", tmp_path / "cache", _splits(manifest))
    assert not any((tmp_path / "cache" / "entries").iterdir())
    assert not any(p.is_file() for p in (tmp_path / "cache" / "blobs").rglob("*"))


def test_source_must_match_its_content_hash_and_have_the_task(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, seed=7, images=5)
    (tmp_path / "store" / "manifests" / "f00.json").write_bytes(manifest.to_json())
    with pytest.raises(ValueError, match="content hash"):
        materialize(DirectorySource(tmp_path / "store", "f00"), "detection", tmp_path / "c", _splits(manifest))
    with pytest.raises(ValueError, match="no pose"):
        materialize(DirectorySource(tmp_path / "store", manifest.content_hash()), "pose", tmp_path / "c", {})


def test_cache_key_depends_on_hash_task_and_splits_only() -> None:
    splits: dict[str, Split] = {"a.jpg": "train", "b.jpg": "val"}
    key = cache_key("h", "detection", splits)
    assert key == cache_key("h", "detection", dict(reversed(splits.items())))
    assert len({key, cache_key("h2", "detection", splits), cache_key("h", "segmentation", splits)}) == 3
    assert key != cache_key("h", "detection", {"a.jpg": "val", "b.jpg": "val"})


def test_publish_directory_is_deterministic(tmp_path: Path) -> None:
    root = generate(tmp_path / "ds", images=6, seed=8)
    a, b = publish_directory(root, tmp_path / "s1"), publish_directory(root, tmp_path / "s2")
    assert a.content_hash() == b.content_hash() and a.annotations.keys() == {
        "detection",
        "segmentation",
        "classification",
    }
    doc: dict[str, Any] = json.loads((tmp_path / "s1" / blob_key(a.annotations["detection"])).read_bytes())
    assert (
        len(doc["images"]) == 6
        and a.images[0].format == "JPEG"
        and (a.images[0].width, a.images[0].height) == (160, 128)
    )
