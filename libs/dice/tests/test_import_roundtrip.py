"""YOLO and COCO uploads become DICE and come back out the same: every task, splits kept."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import yaml
from import_helpers import coco_json, downloads, imported, numbers, rezip, same_numbers, zip_files

from vtp_dice.archive import open_archive
from vtp_dice.detect_format import detect_format
from vtp_dice.format import Task
from vtp_dice.sample_foreign import NAMES, coco_zip, yolo_zip

YOLO_TASKS: list[Task] = ["detection", "segmentation", "pose"]
COCO_TASKS: list[Task] = ["detection", "segmentation", "pose"]


@pytest.mark.parametrize("task", YOLO_TASKS)
def test_yolo_round_trip_gives_the_same_label_files_and_class_order(tmp_path: Path, task: Task) -> None:
    original = zip_files(yolo_zip(task))
    docs, images = imported(tmp_path, rezip(original))
    assert list(docs) == [task]
    out = downloads(docs, images, "yolo", task)
    labels = {k: v for k, v in original.items() if k.startswith("labels/")}
    assert {k for k in out if k.startswith("labels/")} == set(labels)
    for path, text in labels.items():
        assert same_numbers(numbers(out[path]), numbers(text)), path
    data = yaml.safe_load(out["data.yaml"])
    assert data["names"] == dict(enumerate(NAMES))
    if task == "pose":
        assert data["kpt_shape"] == [3, 3] and data["flip_idx"] == [1, 0, 2]


def test_yolo_classification_round_trip(tmp_path: Path) -> None:
    original = zip_files(yolo_zip("classification"))
    docs, images = imported(tmp_path, rezip(original))
    out = downloads(docs, images, "yolo", "classification")
    assert {k for k in out if k.endswith(".jpg")} == {k for k in original if k.endswith(".jpg")}
    assert [c["name"] for c in docs["classification"]["classes"]] == sorted(NAMES)


@pytest.mark.parametrize("task", COCO_TASKS)
def test_coco_round_trip_keeps_boxes_polygons_keypoints_categories_ids(tmp_path: Path, task: Task) -> None:
    data, originals = coco_zip(task)
    docs, images = imported(tmp_path, data)
    out = downloads(docs, images, "coco", task)
    kind = "person_keypoints" if task == "pose" else "instances"
    for split in ("train", "val"):
        want, got = originals[f"annotations/{kind}_{split}.json"], coco_json(out, f"annotations/instances_{split}.json")
        assert [(c["id"], c["name"]) for c in got["categories"]] == [(c["id"], c["name"]) for c in want["categories"]]
        if task == "pose":
            assert [c["keypoints"] for c in got["categories"]] == [c["keypoints"] for c in want["categories"]]
            assert [c["skeleton"] for c in got["categories"]] == [c["skeleton"] for c in want["categories"]]
        ids = {i["file_name"]: i["id"] for i in want["images"]}
        assert {i["file_name"]: i["id"] for i in got["images"]} == ids
        fields = ["id", "image_id", "category_id", "bbox", "iscrowd", "segmentation", "keypoints"]
        for a, b in zip(got["annotations"], want["annotations"], strict=True):
            assert {k: a.get(k) for k in fields if k in b} == {k: b[k] for k in fields if k in b}


def test_coco_ids_reused_across_split_files_are_renumbered_and_matched_by_file_name(tmp_path: Path) -> None:
    files = zip_files(coco_zip("detection")[0])
    val = json.loads(files["annotations/instances_val.json"])
    shift = {i["id"]: i["id"] - 6 for i in val["images"]}  # 1..3, as in the train file
    for image in val["images"]:
        image["id"] = shift[image["id"]]
    for ann in val["annotations"]:
        ann["image_id"] = shift[ann["image_id"]]
    files["annotations/instances_val.json"] = json.dumps(val).encode()
    docs, images = imported(tmp_path, rezip(files))
    out = coco_json(downloads(docs, images, "coco", "detection"), "annotations/instances_val.json")
    by_name = {i["id"]: i["file_name"] for i in out["images"]}
    want = {i["id"]: i["file_name"] for i in val["images"]}
    boxes = sorted((by_name[a["image_id"]], a["bbox"]) for a in out["annotations"])
    assert boxes == sorted((want[a["image_id"]], a["bbox"]) for a in val["annotations"])


def test_splits_of_the_upload_are_the_images_split_fields(tmp_path: Path) -> None:
    docs, _ = imported(tmp_path, yolo_zip("detection", {"train": 4, "val": 2, "test": 1}))
    splits = [i["split"] for i in docs["detection"]["images"]]
    assert splits.count("train") == 4 and splits.count("val") == 2 and splits.count("test") == 1


def test_coco_rle_mask_becomes_polygons(tmp_path: Path) -> None:
    import numpy as np
    from pycocotools import mask as mask_utils

    data, _ = coco_zip("segmentation")
    files = zip_files(data)
    doc = json.loads(files["annotations/instances_train.json"])
    mask = np.zeros((48, 64), dtype=np.uint8, order="F")
    mask[10:20, 5:25] = 1
    rle = mask_utils.encode(mask)
    ann = next(a for a in doc["annotations"])
    ann.update(segmentation={"size": [48, 64], "counts": rle["counts"].decode()}, iscrowd=1, bbox=[5, 10, 20, 10])
    files["annotations/instances_train.json"] = json.dumps(doc).encode()
    docs, _ = imported(tmp_path, rezip(files))
    got = next(a for i in docs["segmentation"]["images"] for a in i["annotations"] if a["iscrowd"] == 1)
    xs, ys = got["segmentation"][0][0::2], got["segmentation"][0][1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (5, 10, 24, 19)


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (yolo_zip("detection"), "yolo"),
        (yolo_zip("classification"), "yolo"),
        (coco_zip("pose")[0], "coco"),
    ],
)
def test_format_is_detected_from_the_content(tmp_path: Path, data: bytes, fmt: str) -> None:
    path = tmp_path / "u.zip"
    path.write_bytes(data)
    with open_archive(path, require_annotations=False) as archive:
        assert detect_format(archive) == fmt


def test_roboflow_layout_with_parent_paths_and_valid_folder(tmp_path: Path) -> None:
    files = zip_files(yolo_zip("detection"))
    moved = {}
    for name, data in files.items():
        parts = name.split("/")
        if parts[0] in ("images", "labels"):
            split = "valid" if parts[1] == "val" else parts[1]
            moved[f"{split}/{parts[0]}/{parts[2]}"] = data
    moved["data.yaml"] = yaml.safe_dump({"train": "../train/images", "val": "../valid/images", "names": NAMES}).encode()
    docs, _ = imported(tmp_path, rezip(moved))
    assert {i["split"] for i in docs["detection"]["images"]} == {"train", "val"}
    assert sum(len(i["annotations"]) for i in docs["detection"]["images"]) > 0


def test_zip_with_a_top_folder(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in zip_files(yolo_zip("segmentation")).items():
            zf.writestr(f"my-dataset/{name}", data)
    docs, _ = imported(tmp_path, buf.getvalue())
    assert list(docs) == ["segmentation"]


def _coco_with_keypoint_masks(same_ids: bool) -> bytes:
    import random

    from vtp_dice.sample_foreign import coco_doc, jpeg

    instances = coco_doc("segmentation", 1, 3, random.Random(0))
    people = coco_doc("pose", 1, 3, random.Random(0))
    for a, b in zip(people["annotations"], instances["annotations"], strict=True):
        a["segmentation"] = b["segmentation"]
        a["id"] = b["id"] if same_ids else b["id"] + 5000
    files = {f"images/val/{i['file_name']}": jpeg(i["id"]) for i in instances["images"]}
    files["annotations/instances_val.json"] = json.dumps(instances).encode()
    files["annotations/person_keypoints_val.json"] = json.dumps(people).encode()
    return rezip(files)


def test_coco_instances_and_keypoints_files_share_their_masks(tmp_path: Path) -> None:
    docs, _ = imported(tmp_path, _coco_with_keypoint_masks(same_ids=True))
    assert sorted(docs) == ["detection", "pose", "segmentation"]
    assert len(docs["segmentation"]["images"]) == 3


def test_coco_keypoint_masks_that_are_not_the_instances_ones_are_not_dropped(tmp_path: Path) -> None:
    from import_helpers import problems

    found = problems(tmp_path, _coco_with_keypoint_masks(same_ids=False))
    assert {p["code"] for p in found} == {"duplicate_file_name"}
    assert found[0]["file"] == "annotations/person_keypoints_val.json"
