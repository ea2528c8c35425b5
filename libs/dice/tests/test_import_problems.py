"""Every import problem names the original file and its line (YOLO) or JSON pointer (COCO), all at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from import_helpers import problems, rezip, zip_files
from pycocotools import mask as mask_utils

from vtp_dice.sample_foreign import coco_zip, yolo_zip

Files = dict[str, bytes]
LABEL = "labels/train/img_0002.txt"  # two objects (see sample_foreign)


def _yolo(task: str = "detection") -> Files:
    return zip_files(yolo_zip(task))  # type: ignore[arg-type]


def _line(files: Files, path: str, n: int, text: str) -> None:
    lines = files[path].decode().splitlines()
    lines[n - 1] = text
    files[path] = ("\n".join(lines) + "\n").encode()


def _data_yaml(files: Files, **changes: Any) -> None:
    data = yaml.safe_load(files["data.yaml"])
    data.update(changes)
    files["data.yaml"] = yaml.safe_dump(data).encode()


def _one(found: list[dict[str, Any]], code: str) -> dict[str, Any]:
    hits = [p for p in found if p["code"] == code]
    assert hits, found
    return hits[0]


YOLO_CASES: list[tuple[str, str, Callable[[Files], None], str, str, int | str]] = [
    ("detection", "class 7", lambda f: _line(f, LABEL, 2, "7 0.5 0.5 0.2 0.2"), "yolo_class_unknown", LABEL, 2),
    ("detection", "x > 1", lambda f: _line(f, LABEL, 1, "0 1.5 0.5 0.2 0.2"), "yolo_coordinate_out_of_range", LABEL, 1),
    ("detection", "3 values", lambda f: _line(f, LABEL, 2, "0 0.5 0.5"), "yolo_label_invalid", LABEL, 2),
    ("detection", "words", lambda f: _line(f, LABEL, 1, "cat 0.5 0.5 0.2 0.2"), "yolo_label_invalid", LABEL, 1),
    ("detection", "zero width", lambda f: _line(f, LABEL, 2, "0 0.5 0.5 0 0.2"), "bbox_non_positive", LABEL, 2),
    ("segmentation", "2 points", lambda f: _line(f, LABEL, 1, "1 0.1 0.1 0.2 0.2"), "polygon_too_few_points", LABEL, 1),
    (
        "pose",
        "visibility 5",
        lambda f: _line(f, LABEL, 1, "0 .5 .5 .2 .2 .1 .1 2 .2 .2 5 0 0 0"),
        "keypoint_visibility_invalid",
        LABEL,
        1,
    ),
    ("pose", "kpt count", lambda f: _line(f, LABEL, 2, "0 .5 .5 .2 .2 .1 .1 2"), "yolo_label_invalid", LABEL, 2),
    (
        "detection",
        "no image",
        lambda f: f.update({"labels/val/ghost.txt": b"0 0.5 0.5 0.1 0.1\n"}),
        "yolo_label_without_image",
        "labels/val/ghost.txt",
        "",
    ),
    (
        "detection",
        "names gap",
        lambda f: _data_yaml(f, names={0: "a", 2: "b"}),
        "yolo_names_invalid",
        "data.yaml",
        "/names",
    ),
    (
        "detection",
        "no val dir",
        lambda f: _data_yaml(f, val="images/validation"),
        "yolo_split_missing",
        "data.yaml",
        "/val",
    ),
    (
        "detection",
        "txt list",
        lambda f: _data_yaml(f, train="train.txt"),
        "yolo_split_list_unsupported",
        "data.yaml",
        "/train",
    ),
    (
        "pose",
        "flip_idx",
        lambda f: _data_yaml(f, flip_idx=[2, 1, 0]),
        "yolo_flip_idx_unrepresentable",
        "data.yaml",
        "/flip_idx",
    ),
    ("pose", "kpt_shape", lambda f: _data_yaml(f, kpt_shape=[3]), "yolo_yaml_invalid", "data.yaml", "/kpt_shape"),
    (
        "detection",
        "empty name",
        lambda f: _data_yaml(f, names=["cat", "", "bird"]),
        "schema_violation",
        "data.yaml",
        "/names/1",
    ),
    (
        "detection",
        "broken image",
        lambda f: f.update({"images/val/img_0008.jpg": b"\xff\xd8\xff\xe0 not really"}),
        "image_undecodable",
        "images/val/img_0008.jpg",
        "",
    ),
]


@pytest.mark.parametrize(
    ("task", "what", "mutate", "code", "file", "where"), YOLO_CASES, ids=[c[1] for c in YOLO_CASES]
)
def test_yolo_problem_names_the_original_file_and_line(
    tmp_path: Path, task: str, what: str, mutate: Callable[[Files], None], code: str, file: str, where: int | str
) -> None:
    files = _yolo(task)
    mutate(files)
    found = _one(problems(tmp_path, rezip(files)), code)
    assert found["file"] == file
    if isinstance(where, int):
        assert found["line"] == where
    elif where:
        assert found["pointer"] == where


def test_every_yolo_problem_at_once_and_capped(tmp_path: Path) -> None:
    files = _yolo()
    _line(files, LABEL, 1, "9 0.5 0.5 0.2 0.2")
    _line(files, LABEL, 2, "0 2 0.5 0.2 0.2")
    files["labels/train/img_0003.txt"] = b"0 0.5 0.5 0.2 0.2\n" * 300 + b"5 0.5 0.5 0.2 0.2\n" * 300
    found = problems(tmp_path, rezip(files))
    assert {"yolo_class_unknown", "yolo_coordinate_out_of_range"} <= {p["code"] for p in found}
    assert len(found) == 201 and found[-1]["code"] == "too_many_problems"


def test_data_yaml_missing(tmp_path: Path) -> None:
    files = _yolo()
    del files["data.yaml"]
    assert _one(problems(tmp_path, rezip(files)), "yolo_data_yaml_missing")


def test_nothing_matches(tmp_path: Path) -> None:
    found = problems(tmp_path, rezip({"notes/readme.txt": b"hello"}))
    assert [p["code"] for p in found] == ["unknown_dataset_format"]


def test_named_format_that_does_not_fit(tmp_path: Path) -> None:
    assert _one(problems(tmp_path, yolo_zip("detection"), "coco"), "coco_no_annotation_file")


def _coco(task: str = "detection") -> tuple[Files, dict[str, Any]]:
    files = zip_files(coco_zip(task)[0])  # type: ignore[arg-type]
    return files, json.loads(files[TRAIN])


TRAIN = "annotations/instances_train.json"


def _save(files: Files, doc: dict[str, Any]) -> None:
    files[TRAIN] = json.dumps(doc).encode()


def _rle(doc: dict[str, Any], counts: Any, size: list[int] | None = None) -> None:
    ann = doc["annotations"][1]
    ann["segmentation"] = {"size": size or [48, 64], "counts": counts}


def _holed() -> str:
    m = np.zeros((48, 64), dtype=np.uint8, order="F")
    m[5:30, 5:30], m[12:20, 12:20] = 1, 0
    counts: bytes = mask_utils.encode(m)["counts"]
    return counts.decode()


COCO_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "image_id",
        lambda d: d["annotations"][1].update(image_id=999),
        "coco_image_id_unknown",
        "/annotations/1/image_id",
    ),
    (
        "category",
        lambda d: d["annotations"][0].update(category_id=42),
        "unknown_class_id",
        "/annotations/0/category_id",
    ),
    (
        "bbox outside",
        lambda d: d["annotations"][2].update(bbox=[50, 40, 30, 30]),
        "bbox_out_of_bounds",
        "/annotations/2/bbox",
    ),
    (
        "polygon",
        lambda d: d["annotations"][1].update(segmentation=[[1, 1, 5, 5]]),
        "polygon_too_few_points",
        "/annotations/1/segmentation/0",
    ),
    ("rle garbage", lambda d: _rle(d, "!!not-rle"), "coco_rle_invalid", "/annotations/1/segmentation"),
    ("rle counts", lambda d: _rle(d, [10, 20]), "coco_rle_invalid", "/annotations/1/segmentation"),
    ("rle size", lambda d: _rle(d, [3072], [64, 48]), "coco_rle_size_mismatch", "/annotations/1/segmentation"),
    ("rle hole", lambda d: _rle(d, _holed()), "coco_mask_hole_unsupported", "/annotations/1/segmentation"),
    ("image file", lambda d: d["images"][0].update(file_name="nope.jpg"), "image_file_missing", "/images/0/file_name"),
    ("duplicate id", lambda d: d["images"][1].update(id=d["images"][0]["id"]), "duplicate_image_id", "/images/1/id"),
    ("size", lambda d: d["images"][2].update(width=65), "image_size_mismatch", "/images/2/width"),
]


@pytest.mark.parametrize(("what", "mutate", "code", "at"), COCO_CASES, ids=[c[0] for c in COCO_CASES])
def test_coco_problem_names_the_original_file_and_json_pointer(
    tmp_path: Path, what: str, mutate: Callable[[dict[str, Any]], None], code: str, at: str
) -> None:
    files, doc = _coco("segmentation")
    mutate(doc)
    _save(files, doc)
    found = _one(problems(tmp_path, rezip(files)), code)
    assert (found["file"], found["pointer"]) == (TRAIN, at)


def test_coco_keypoint_visibility_points_into_the_keypoints(tmp_path: Path) -> None:
    files = zip_files(coco_zip("pose")[0])
    path = "annotations/person_keypoints_train.json"
    doc = json.loads(files[path])
    doc["annotations"][0]["keypoints"][2] = 7
    files[path] = json.dumps(doc).encode()
    found = _one(problems(tmp_path, rezip(files)), "keypoint_visibility_invalid")
    assert (found["file"], found["pointer"]) == (path, "/annotations/0/keypoints/2")


def test_coco_invalid_json(tmp_path: Path) -> None:
    files, _ = _coco()
    files[TRAIN] = b'{"images": [}'
    found = _one(problems(tmp_path, rezip(files), "coco"), "invalid_json")
    assert found["file"] == TRAIN


def test_coco_categories_that_differ_between_split_files(tmp_path: Path) -> None:
    files, doc = _coco()
    doc["categories"][1]["name"] = "cow"
    _save(files, doc)
    found = _one(problems(tmp_path, rezip(files)), "coco_categories_differ")
    assert (found["file"], found["pointer"]) == ("annotations/instances_val.json", "/categories/1")


def test_classification_image_outside_a_class_folder(tmp_path: Path) -> None:
    files = zip_files(yolo_zip("classification"))
    files["train/stray.jpg"] = files[next(k for k in files if k.endswith(".jpg"))]
    found = _one(problems(tmp_path, rezip(files), "yolo"), "imagefolder_image_outside_class")
    assert found["file"] == "train/stray.jpg"


def test_one_image_in_two_splits(tmp_path: Path) -> None:
    files = _yolo()
    _data_yaml(files, val=["images/val", "images/train"])
    found = _one(problems(tmp_path, rezip(files)), "yolo_image_in_two_splits")
    assert found["file"].startswith("images/train/")


def test_split_folders_without_images(tmp_path: Path) -> None:
    files = {k: v for k, v in _yolo().items() if not k.endswith(".jpg")}
    files["images/train/readme.md"] = files["images/val/readme.md"] = b"no images here"
    codes = {p["code"] for p in problems(tmp_path, rezip(files))}
    assert "yolo_no_images" in codes


def test_problems_found_after_conversion_never_name_a_file_the_user_did_not_upload(tmp_path: Path) -> None:
    files = _yolo()
    files["labels/train/img_0003.txt"] = b"0 0.5 0.5 0 0.1\n" * 300  # zero-width boxes: DICE validator problems
    found = problems(tmp_path, rezip(files))
    assert found[0] == {**found[0], "code": "bbox_non_positive", "file": "labels/train/img_0003.txt", "line": 1}
    assert found[-1]["code"] == "too_many_problems" and len(found) == 201
    assert not [p for p in found if p.get("file", "").startswith("annotations_")]
