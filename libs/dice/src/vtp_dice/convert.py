"""One dataset version -> the layouts trainers and tools want: YOLO, ImageFolder, COCO, DICE zips.

Every layout is first planned as data (small files as bytes, images as manifest entries,
empty directories), then either written to disk, with images hard-linked from a local blob
cache, or streamed as a zip. One planner per layout keeps the on-disk and zipped forms identical.

Inputs are a `Manifest`, the task's parsed canonical annotation documents (`docs`), a split
per image `file_name` (from `vtp_dice.splits`), and a way to reach image bytes by SHA-256:
`blob_path(sha) -> Path` for files in a local cache, `open_blob(sha) -> BinaryIO` for streaming.
Class ids become contiguous indices 0..n-1 in ascending DICE id order; every output carries the
mapping in `dice_classes.json`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import yaml

from vtp_dice.format import ANNOTATION_FILES, METADATA_FILE, SPLITS, Split, Task
from vtp_dice.manifest import ImageEntry, Manifest, blob_key

BlobPath = Callable[[str], Path]
OpenBlob = Callable[[str], BinaryIO]
Doc = Mapping[str, Any]

# Suffixes Ultralytics (and most loaders) recognise as images; other names get one from the sniffed format.
_IMAGE_SUFFIXES = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".mpo"})
_FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif", "MPO": ".jpg"}
# Reproducible zips (same bytes, same ETag) need a fixed member date.
_ZIP_DATE = (2025, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


@dataclass
class Plan:
    """A layout as data: small files (relative path -> bytes), images (relative path -> entry), empty dirs."""

    files: dict[str, bytes] = field(default_factory=dict)
    images: dict[str, ImageEntry] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    """One image of the task, with its split and its flattened output name."""

    split: Split
    name: str
    record: Doc
    entry: ImageEntry


def local_blobs(root: Path) -> BlobPath:
    """`blob_path` for a directory holding blobs at their object-store keys (blobs/sha256/xx/<sha>)."""
    return lambda sha: root / blob_key(sha)


def class_index(doc: Doc) -> dict[int, int]:
    """DICE class id -> contiguous index, in ascending id order (what YOLO label files need)."""
    return {cid: i for i, cid in enumerate(sorted(c["id"] for c in doc["classes"]))}


def flat_names(file_names: Sequence[str], entries: Mapping[str, ImageEntry]) -> dict[str, str]:
    """Sub-folder paths -> unique flat names, so one `images/<split>/` folder can hold them all.

    Stems must be unique case-insensitively (label files are `<stem>.txt`; some disks ignore case);
    a clash gets a short digest of the original path. A suffix loaders do not recognise is replaced.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for file_name in sorted(file_names):
        path = PurePosixPath(file_name.replace("/", "__"))
        stem, suffix = path.stem, path.suffix
        if suffix.lower() not in _IMAGE_SUFFIXES:
            stem, suffix = path.name, _FORMAT_SUFFIX.get(entries[file_name].format.upper(), ".jpg")
        if stem.lower() in taken:
            stem = f"{stem}~{hashlib.sha256(file_name.encode()).hexdigest()[:8]}"
        taken.add(stem.lower())
        out[file_name] = stem + suffix
    return out


def task_items(manifest: Manifest, doc: Doc, splits: Mapping[str, Split]) -> list[Item]:
    """The images the task lists (backgrounds included), each with its split; every one must have a split."""
    entries = manifest.images_by_name()
    records = list(doc["images"])
    missing = [r["file_name"] for r in records if r["file_name"] not in entries]
    if missing:
        raise ValueError(f"{len(missing)} image(s) not in the manifest, e.g. {missing[0]!r}")
    unsplit = [r["file_name"] for r in records if splits.get(r["file_name"]) not in SPLITS]
    if unsplit:
        raise ValueError(f"{len(unsplit)} image(s) have no split, e.g. {unsplit[0]!r}")
    names = flat_names([r["file_name"] for r in records], entries)
    return [Item(splits[r["file_name"]], names[r["file_name"]], r, entries[r["file_name"]]) for r in records]


def _classes_file(task: Task, doc: Doc, items: list[Item]) -> bytes:
    index = class_index(doc)
    by_id = {c["id"]: c["name"] for c in doc["classes"]}
    counts = {s: sum(1 for i in items if i.split == s) for s in SPLITS}
    classes = [{"index": i, "id": cid, "name": by_id[cid]} for cid, i in index.items()]
    return json.dumps({"task": task, "classes": classes, "images": counts}, indent=2).encode() + b"\n"


def _norm(v: float, size: float) -> float:
    # Labels may overhang the image by a rounding error; YOLO rejects coordinates outside [0, 1].
    return min(max(v / size, 0.0), 1.0)


def _box(ann: Doc, w: int, h: int) -> list[float] | None:
    x, y, bw, bh = ann["bbox"]
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + bw, w), min(y + bh, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]


def merge_polygons(polygons: Sequence[Sequence[float]]) -> list[float]:
    """Several polygons of one object -> one outline: each extra part is joined to the first by a
    zero-width bridge between their nearest vertices (a YOLO label line holds one polygon)."""
    parts = [[(p[i], p[i + 1]) for i in range(0, len(p) - 1, 2)] for p in polygons if len(p) >= 6]
    if not parts:
        return []
    first, bridges = parts[0], dict[int, list[list[tuple[float, float]]]]()
    for part in parts[1:]:
        a, b = min(
            ((a, b) for a in range(len(first)) for b in range(len(part))),
            key=lambda ab: math.dist(first[ab[0]], part[ab[1]]),
        )
        bridges.setdefault(a, []).append(part[b:] + part[: b + 1])  # around the part, back to its bridge vertex
    out: list[tuple[float, float]] = []
    for a, point in enumerate(first):
        out.append(point)
        for loop in bridges.get(a, []):
            out += [*loop, point]
    return [v for point in out for v in point]


def yolo_label(task: Task, record: Doc, index: Mapping[int, int]) -> str:
    """One image's YOLO label file: `cls cx cy w h` | `cls x1 y1 ...` | `cls cx cy w h x y v ...`, normalised."""
    w, h = record["width"], record["height"]
    lines = []
    for ann in record["annotations"]:
        cls = index[ann["class_id"]]
        if task == "segmentation":
            flat = merge_polygons(ann.get("segmentation") or [])
            values = [_norm(v, w if i % 2 == 0 else h) for i, v in enumerate(flat)]
        else:
            box = _box(ann, w, h)
            if box is None:
                continue
            values = box
            if task == "pose":
                kpts = ann["keypoints"]
                for i in range(0, len(kpts), 3):
                    vis = int(kpts[i + 2])
                    values += [_norm(kpts[i], w), _norm(kpts[i + 1], h), float(vis)] if vis else [0.0, 0.0, 0.0]
        if values:
            lines.append(" ".join([str(cls), *(f"{v:.6f}" for v in values)]))
    return "".join(line + "\n" for line in lines)


def _flip_idx(names: Sequence[str]) -> list[int]:
    """Keypoint index after a horizontal flip: `left_*` and `right_*` swap; others map to themselves."""
    swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}
    where = {n: i for i, n in enumerate(names)}
    out = []
    for i, name in enumerate(names):
        mirrored = next((name.replace(a, b, 1) for a, b in swap.items() if a in name), name)
        out.append(where.get(mirrored, i))
    return out


def yolo_plan(
    task: Task, manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split], root: str | None
) -> Plan:
    """YOLO layout; `root` is data.yaml's `path` (None: Ultralytics uses the yaml's folder, right for zips)."""
    if task == "classification":
        raise ValueError("YOLO label files are for detection, segmentation and pose; use write_imagefolder")
    doc = docs[task]
    items, index = task_items(manifest, doc, splits), class_index(doc)
    by_id = {c["id"]: c for c in doc["classes"]}
    plan = Plan()
    for item in items:
        plan.images[f"images/{item.split}/{item.name}"] = item.entry
        stem = PurePosixPath(item.name).stem
        plan.files[f"labels/{item.split}/{stem}.txt"] = yolo_label(task, item.record, index).encode()
    present = {i.split for i in items}
    data: dict[str, Any] = {} if root is None else {"path": root}
    for split in SPLITS:  # train and val are required by Ultralytics even when empty
        if split in present or split != "test":
            data[split] = f"images/{split}"
            if split not in present:
                plan.dirs += [f"images/{split}", f"labels/{split}"]
    data["names"] = {i: by_id[cid]["name"] for cid, i in index.items()}
    if task == "pose":
        shapes = {len(c["keypoints"]) for c in doc["classes"] if c.get("keypoints")}
        if len(shapes) != 1:
            raise ValueError(f"YOLO pose needs one keypoint count for all classes, found {sorted(shapes)}")
        names = next(c["keypoints"] for c in doc["classes"] if c.get("keypoints"))
        kpt_names = {i: list(by_id[cid].get("keypoints") or names) for cid, i in index.items()}
        data.update(kpt_shape=[len(names), 3], flip_idx=_flip_idx(names), kpt_names=kpt_names)
    plan.files["data.yaml"] = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
    plan.files["dice_classes.json"] = _classes_file(task, doc, items)
    return plan


def _safe_dir(name: str) -> str:
    # Class names become folder names (ImageFolder's labels); keep them a single path segment.
    cleaned = name.replace("/", "_").replace("\\", "_").strip()
    return "_" + cleaned if cleaned in ("", ".", "..") or cleaned.startswith(".") else cleaned


def imagefolder_plan(manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split]) -> Plan:
    """`{split}/{class}/<image>`; images with no class (or disagreeing classes) are left out.

    Every class folder exists in every split, so each split's sorted folder list (the labels
    torchvision's ImageFolder assigns) is the same.
    """
    doc = docs["classification"]
    items, plan = task_items(manifest, doc, splits), Plan()
    folders = {c["id"]: _safe_dir(c["name"]) for c in doc["classes"]}
    if len(set(folders.values())) < len(folders):  # two labels in one folder would silently merge classes
        raise ValueError(f"class names collide as folder names: {sorted(folders.values())}")
    kept = []
    for item in items:
        labels = {a["class_id"] for a in item.record["annotations"]}
        if len(labels) == 1:
            plan.images[f"{item.split}/{folders[labels.pop()]}/{item.name}"] = item.entry
            kept.append(item)
    used = {s for s in SPLITS if any(i.split == s for i in kept)} | {"train", "val"}
    plan.dirs += [f"{split}/{folder}" for split in SPLITS if split in used for folder in sorted(folders.values())]
    plan.files["dice_classes.json"] = _classes_file("classification", doc, kept)
    return plan


def coco_dict(task: Task, doc: Doc, manifest: Manifest, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A COCO document for the task's images; `names` picks images (DICE file_name -> output file_name)."""
    if task == "classification":
        raise ValueError("COCO has no classification layout")
    entries = manifest.images_by_name()
    categories = []
    for c in sorted(doc["classes"], key=lambda c: c["id"]):
        cat = {"id": c["id"], "name": c["name"], "supercategory": c.get("supercategory", "")}
        if task == "pose":
            cat.update(keypoints=c.get("keypoints", []), skeleton=c.get("skeleton", []))
        categories.append(cat)
    images, annotations = [], []
    for record in doc["images"]:
        if names is not None and record["file_name"] not in names:
            continue
        if record["file_name"] not in entries:
            raise ValueError(f"image {record['file_name']!r} not in the manifest")
        file_name = record["file_name"] if names is None else names[record["file_name"]]
        images.append(
            {"id": record["id"], "file_name": file_name, "width": record["width"], "height": record["height"]}
        )
        for ann in record["annotations"]:
            x, y, w, h = ann["bbox"]
            out = {"id": ann["id"], "image_id": record["id"], "category_id": ann["class_id"], "bbox": [x, y, w, h]}
            out.update(area=float(ann.get("area") or w * h), iscrowd=int(ann.get("iscrowd", 0)))
            if task == "segmentation":
                out["segmentation"] = ann.get("segmentation", [])
            elif task == "pose":
                out.update(
                    keypoints=ann["keypoints"],
                    num_keypoints=ann.get("num_keypoints", sum(1 for v in ann["keypoints"][2::3] if v)),
                )
            annotations.append(out)
    return {
        "info": {"description": doc.get("dataset_name", "")},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def coco_plan(task: Task, manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split]) -> Plan:
    """`annotations/instances_{split}.json` + `images/{split}/<image>` for each split that has images."""
    doc = docs[task]
    items, plan = task_items(manifest, doc, splits), Plan()
    for split in SPLITS:
        chosen = [i for i in items if i.split == split]
        if chosen:
            names = {i.record["file_name"]: i.name for i in chosen}
            plan.files[f"annotations/instances_{split}.json"] = json.dumps(
                coco_dict(task, doc, manifest, names)
            ).encode()
            plan.images.update({f"images/{split}/{i.name}": i.entry for i in chosen})
    plan.files["dice_classes.json"] = _classes_file(task, doc, items)
    return plan


def write_plan(dest: Path, plan: Plan, blob_path: BlobPath, link: bool = True) -> Path:
    """Materialise a plan under `dest`; images are hard links into the blob cache when `link` and possible."""
    for rel in plan.dirs:
        (dest / rel).mkdir(parents=True, exist_ok=True)
    for rel, data in plan.files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    for rel, entry in plan.images.items():
        target, source = dest / rel, blob_path(entry.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Never copy *into* an existing file: it may be a hard link, and the copy would rewrite the cached blob.
        target.unlink(missing_ok=True)
        try:
            if not link:
                raise OSError("linking disabled")
            os.link(source, target)
        except OSError:  # another filesystem, or a filesystem without hard links
            shutil.copyfile(source, target)
    return dest


def write_yolo(
    dest: Path,
    task: Task,
    manifest: Manifest,
    docs: Mapping[Task, Doc],
    splits: Mapping[str, Split],
    blob_path: BlobPath,
    link: bool = True,
) -> Path:
    """YOLO dataset under `dest` (data.yaml with an absolute `path`); returns `dest`."""
    return write_plan(dest, yolo_plan(task, manifest, docs, splits, str(dest.resolve())), blob_path, link)


def write_imagefolder(
    dest: Path,
    manifest: Manifest,
    docs: Mapping[Task, Doc],
    splits: Mapping[str, Split],
    blob_path: BlobPath,
    link: bool = True,
) -> Path:
    """ImageFolder root (`train/`, `val/`, maybe `test/`) for classification; returns `dest`."""
    return write_plan(dest, imagefolder_plan(manifest, docs, splits), blob_path, link)


def write_coco(
    dest: Path,
    task: Task,
    manifest: Manifest,
    docs: Mapping[Task, Doc],
    splits: Mapping[str, Split],
    blob_path: BlobPath,
    link: bool = True,
) -> Path:
    """COCO dataset under `dest`; returns `dest`."""
    return write_plan(dest, coco_plan(task, manifest, docs, splits), blob_path, link)


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
