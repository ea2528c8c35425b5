"""Conversion to YOLO, ImageFolder and COCO, checked by the tools that read them; streamed zips."""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

# Ultralytics reads these at import: no online checks, analytics or pip installs from tests.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

import torchvision
from pycocotools.coco import COCO
from ultralytics.cfg import get_cfg
from ultralytics.data.build import build_dataloader, build_yolo_dataset
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import IterableSimpleNamespace

from vtp_dice.convert import (
    class_index,
    coco_dict,
    flat_names,
    iter_coco_zip,
    iter_dice_zip,
    iter_yolo_zip,
    local_blobs,
    merge_polygons,
    task_items,
    write_coco,
    write_imagefolder,
    write_yolo,
    yolo_label,
)
from vtp_dice.format import ANNOTATION_FILES, Split, Task
from vtp_dice.manifest import ImageEntry, Manifest, blob_key
from vtp_dice.materialize import publish_directory
from vtp_dice.sample import generate

TRAINER_TASK = {"detection": "detect", "segmentation": "segment", "pose": "pose"}


@dataclass
class Snap:
    store: Path
    manifest: Manifest
    docs: dict[Task, dict[str, Any]]
    splits: dict[str, Split]

    def open_blob(self, sha: str) -> BinaryIO:
        return open(self.store / blob_key(sha), "rb")


def _pose_doc(seg: dict[str, Any]) -> dict[str, Any]:
    """A pose task from the sample's triangles: keypoints are the three corners (apex first)."""
    doc = copy.deepcopy(seg)
    doc["task_type"] = "pose"
    doc["classes"] = [
        {"id": 2, "name": "triangle", "color": "#2850dc", "supercategory": "shape"}
        | {"keypoints": ["apex", "right_base", "left_base"], "skeleton": [[1, 2], [2, 3], [3, 1]]}
    ]
    for image in doc["images"]:
        anns = [a for a in image["annotations"] if a["class_name"] == "triangle"]
        for a in anns:
            xs, ys = a["segmentation"][0][0::2], a["segmentation"][0][1::2]
            a["keypoints"] = [v for x, y in zip(xs, ys, strict=True) for v in (x, y, 2)]
            a["num_keypoints"] = 3
            del a["segmentation"]
        image["annotations"] = anns
    first = next(a for i in doc["images"] for a in i["annotations"])
    first["keypoints"][:3], first["num_keypoints"] = [0, 0, 0], 2  # an invisible apex
    return doc


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Snap:
    tmp = tmp_path_factory.mktemp("convert")
    manifest = publish_directory(generate(tmp / "ds", images=50, seed=5, background_fraction=0.1), tmp / "store")
    docs: dict[Task, dict[str, Any]] = {
        task: json.loads((tmp / "store" / blob_key(sha)).read_bytes()) for task, sha in manifest.annotations.items()
    }
    docs["pose"] = _pose_doc(docs["segmentation"])
    names = sorted(i.file_name for i in manifest.images)
    splits: dict[str, Split] = {
        n: "val" if k % 5 == 0 else "test" if k % 7 == 0 else "train" for k, n in enumerate(names)
    }
    return Snap(tmp / "store", manifest, docs, splits)


def _dice_counts(snap: Snap, task: Task) -> dict[str, dict[str, int]]:
    """DICE annotation count per split and per image (by flat output name)."""
    items = task_items(snap.manifest, snap.docs[task], snap.splits)
    out: dict[str, dict[str, int]] = {}
    for item in items:
        out.setdefault(item.split, {})[item.name] = len(item.record["annotations"])
    return out


def test_flat_names_are_unique_and_keep_loadable_suffixes() -> None:
    names = ["a/b.jpg", "a__b.JPG", "A__B.png", "x/scan.dat", "c.jpeg"]
    entries = {n: ImageEntry(n, "0" * 64, 1, 1, 1, "PNG" if n.endswith("dat") else "JPEG") for n in names}
    flat = flat_names(names, entries)
    assert flat["c.jpeg"] == "c.jpeg" and flat["x/scan.dat"] == "x__scan.dat.png"
    stems = [Path(v).stem.lower() for v in flat.values()]
    assert len(set(stems)) == len(names)  # label files <stem>.txt never collide, whatever the case
    assert flat == flat_names(list(reversed(names)), entries)  # deterministic


def test_class_ids_become_contiguous_in_id_order() -> None:
    assert class_index({"classes": [{"id": 7}, {"id": 2}, {"id": 5}]}) == {2: 0, 5: 1, 7: 2}


def test_yolo_label_normalises_and_clips_boxes() -> None:
    record: dict[str, Any] = {"width": 200, "height": 100, "annotations": [{"class_id": 7, "bbox": [10, 20, 50, 40]}]}
    record["annotations"].append({"class_id": 2, "bbox": [190, 90, 20, 20]})  # overhangs the corner
    record["annotations"].append({"class_id": 2, "bbox": [300, 0, 10, 10]})  # outside: dropped
    assert yolo_label("detection", record, {2: 0, 7: 1}).splitlines() == [
        "1 0.175000 0.400000 0.250000 0.400000",
        "0 0.975000 0.950000 0.050000 0.100000",
    ]


def test_multi_part_polygons_merge_into_one_outline() -> None:
    a, b = [0, 0, 10, 0, 10, 10, 0, 10], [20, 0, 30, 0, 30, 10, 20, 10]
    merged = merge_polygons([a, b])
    points = list(zip(merged[0::2], merged[1::2], strict=True))
    corners = {(p[i], p[i + 1]) for p in (a, b) for i in range(0, 8, 2)}
    assert len(points) == 4 + 5 + 1 and set(points) == corners
    assert merge_polygons([a]) == a and merge_polygons([[1, 2]]) == []


def test_pose_labels_and_flip_index(snap: Snap, tmp_path: Path) -> None:
    data = yaml_load(write_yolo(tmp_path, "pose", snap.manifest, snap.docs, snap.splits, local_blobs(snap.store)))
    assert data["kpt_shape"] == [3, 3] and data["flip_idx"] == [0, 2, 1] and data["names"] == {0: "triangle"}
    rows = [r.split() for p in (tmp_path / "labels").rglob("*.txt") for r in p.read_text().splitlines()]
    assert rows and all(len(r) == 5 + 9 for r in rows)
    assert any(r[5:8] == ["0.000000", "0.000000", "0.000000"] for r in rows)  # the invisible apex


def yaml_load(dest: Path) -> dict[str, Any]:
    return check_det_dataset(str(dest / "data.yaml"))


@pytest.mark.parametrize("task", ["detection", "segmentation", "pose"])
def test_yolo_export_loads_in_ultralytics(snap: Snap, task: Task, tmp_path: Path) -> None:
    dest = write_yolo(tmp_path / "yolo", task, snap.manifest, snap.docs, snap.splits, local_blobs(snap.store))
    data = yaml_load(dest)
    assert data["nc"] == len(snap.docs[task]["classes"]) and Path(data["path"]) == dest.resolve()
    cfg = cast(IterableSimpleNamespace, get_cfg(overrides={"task": TRAINER_TASK[task], "imgsz": 128}))
    for split, per_image in _dice_counts(snap, task).items():
        dataset = build_yolo_dataset(cfg, data[split], 8, data, mode="val")
        assert isinstance(dataset, YOLODataset)
        found = {Path(lb["im_file"]).name: len(lb["cls"]) for lb in dataset.labels}
        assert found == per_image  # every image (backgrounds too), every annotation
        if task == "segmentation":
            assert all(len(lb["segments"]) == len(lb["cls"]) for lb in dataset.labels)
        if task == "pose":
            assert all(lb["keypoints"].shape == (len(lb["cls"]), 3, 3) for lb in dataset.labels)
        batch = next(iter(build_dataloader(dataset, batch=8, workers=0, shuffle=False)))
        first = [Path(f).name for f in batch["im_file"]]
        assert batch["cls"].shape[0] == sum(per_image[n] for n in first)


def test_imagefolder_export(snap: Snap, tmp_path: Path) -> None:
    dest = write_imagefolder(tmp_path / "cls", snap.manifest, snap.docs, snap.splits, local_blobs(snap.store))
    labelled = {s: {n for n, c in per.items() if c} for s, per in _dice_counts(snap, "classification").items()}
    for split in ("train", "val", "test"):
        folder = torchvision.datasets.ImageFolder(str(dest / split), allow_empty=True)
        assert folder.classes == ["circle", "square", "triangle"]  # same labels in every split
        assert {Path(p).name for p, _ in folder.samples} == labelled[split]  # backgrounds left out
    by_name = {i.name: i.record for i in task_items(snap.manifest, snap.docs["classification"], snap.splits)}
    for path in (dest / "train").rglob("*.jpg"):
        assert by_name[path.name]["annotations"][0]["class_name"] == path.parent.name


# pycocotools' mask decoding predates NumPy 2's `copy` keyword and says so; not our concern.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("task", ["detection", "segmentation", "pose"])
def test_coco_export_loads_in_pycocotools(snap: Snap, task: Task, tmp_path: Path) -> None:
    dest = write_coco(tmp_path / "coco", task, snap.manifest, snap.docs, snap.splits, local_blobs(snap.store))
    total = 0
    for split, per_image in _dice_counts(snap, task).items():
        coco = COCO(str(dest / "annotations" / f"instances_{split}.json"))
        assert len(coco.getAnnIds()) == sum(per_image.values())
        assert {img["file_name"] for img in coco.loadImgs(coco.getImgIds())} == set(per_image)
        assert all((dest / "images" / split / name).is_file() for name in per_image)
        total += len(coco.getAnnIds())
        if task == "segmentation":
            ann = coco.loadAnns(coco.getAnnIds())[0]
            assert abs(int(coco.annToMask(ann).sum()) - ann["area"]) < 0.1 * ann["area"]
    assert total == sum(len(i["annotations"]) for i in snap.docs[task]["images"])


def test_coco_dict_selects_and_renames_images(snap: Snap) -> None:
    doc = snap.docs["detection"]
    first = doc["images"][0]["file_name"]
    out = coco_dict("detection", doc, snap.manifest, {first: "renamed.jpg"})
    assert [i["file_name"] for i in out["images"]] == ["renamed.jpg"]
    assert len(out["annotations"]) == len(doc["images"][0]["annotations"])
    assert {c["id"] for c in out["categories"]} == {c["id"] for c in doc["classes"]}
    with pytest.raises(ValueError):
        coco_dict("classification", snap.docs["classification"], snap.manifest)


def test_images_are_hard_links_and_rewrites_never_touch_the_cache(snap: Snap, tmp_path: Path) -> None:
    blobs = local_blobs(snap.store)
    entry = snap.manifest.images[0]
    before = blobs(entry.sha256).read_bytes()
    linked = write_yolo(tmp_path / "y", "detection", snap.manifest, snap.docs, snap.splits, blobs)
    image = next(p for p in (linked / "images").rglob("*") if p.is_file() and p.read_bytes() == before)
    assert image.stat().st_ino == blobs(entry.sha256).stat().st_ino
    write_yolo(tmp_path / "y", "detection", snap.manifest, snap.docs, snap.splits, blobs, link=False)
    assert image.stat().st_nlink == 1 and image.stat().st_ino != blobs(entry.sha256).stat().st_ino
    assert blobs(entry.sha256).read_bytes() == before


def test_every_image_needs_a_split_and_a_manifest_entry(snap: Snap) -> None:
    partial = dict(list(snap.splits.items())[1:])
    with pytest.raises(ValueError, match="no split"):
        task_items(snap.manifest, snap.docs["detection"], partial)
    ghost = copy.deepcopy(snap.docs["detection"])
    ghost["images"][0]["file_name"] = "nowhere.jpg"
    with pytest.raises(ValueError, match="not in the manifest"):
        task_items(snap.manifest, ghost, snap.splits)


def _unzip(chunks: Iterator[bytes], dest: Path) -> dict[str, bytes]:
    data = b"".join(chunks)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        zf.extractall(dest)
        return {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}


def test_dice_zip_reuploads_to_the_same_content_hash(snap: Snap, tmp_path: Path) -> None:
    files = _unzip(iter_dice_zip(snap.manifest, snap.open_blob), tmp_path / "dice")
    for task, sha in snap.manifest.annotations.items():
        assert files[ANNOTATION_FILES[task]] == (snap.store / blob_key(sha)).read_bytes()
    assert publish_directory(tmp_path / "dice", tmp_path / "store2").content_hash() == snap.manifest.content_hash()
    with pytest.raises(ValueError, match="SHA-256"):
        b"".join(iter_dice_zip(snap.manifest, snap.open_blob, annotation_bytes={"detection": b"{}"}))


def test_zip_streams_lazily_in_small_chunks(snap: Snap) -> None:
    opened: list[str] = []

    def open_blob(sha: str) -> BinaryIO:
        opened.append(sha)
        return snap.open_blob(sha)

    chunks = iter_dice_zip(snap.manifest, open_blob)
    first = next(chunks)
    sizes = {i.sha256: i.size for i in snap.manifest.images}
    read = [sizes[sha] for sha in opened if sha in sizes]
    assert len(read) < len(sizes) and sum(read[:-1]) <= len(first)  # no reading ahead of what was sent
    rest = [len(c) for c in chunks]
    assert max([len(first), *rest]) < 2 << 20 and min(rest) > 0 and len(opened) >= len(sizes)


def test_yolo_zip_matches_the_directory_and_loads(snap: Snap, tmp_path: Path) -> None:
    files = _unzip(iter_yolo_zip("detection", snap.manifest, snap.docs, snap.splits, snap.open_blob), tmp_path / "z")
    on_disk = write_yolo(tmp_path / "d", "detection", snap.manifest, snap.docs, snap.splits, local_blobs(snap.store))
    disk = {p.relative_to(on_disk).as_posix(): p.read_bytes() for p in on_disk.rglob("*") if p.is_file()}
    assert files.keys() == disk.keys() and all(files[k] == disk[k] for k in files if k != "data.yaml")
    assert Path(yaml_load(tmp_path / "z")["path"]) == (tmp_path / "z").resolve()


def test_coco_zip_loads(snap: Snap, tmp_path: Path) -> None:
    _unzip(iter_coco_zip("segmentation", snap.manifest, snap.docs, snap.splits, snap.open_blob), tmp_path / "c")
    coco = COCO(str(tmp_path / "c" / "annotations" / "instances_train.json"))
    assert coco.getAnnIds() and all(
        (tmp_path / "c" / "images" / "train" / i["file_name"]).is_file() for i in coco.dataset["images"]
    )
