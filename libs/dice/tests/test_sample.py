"""The synthetic shapes dataset: deterministic, and a conforming DICE dataset."""

from __future__ import annotations

import json
import uuid
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vtp_dice.format import ANNOTATION_FILES, METADATA_FILE, TASK_TYPES, normalize_file_name
from vtp_dice.sample import generate, main, zip_dataset


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _doc(root: Path, task: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((root / ANNOTATION_FILES[task]).read_text())  # type: ignore[index]
    return doc


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("sample") / "ds", images=60, seed=3, background_fraction=0.1)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = _files(generate(tmp_path / "a", images=12, seed=7))
    b = _files(generate(tmp_path / "b", images=12, seed=7))
    c = _files(generate(tmp_path / "c", images=12, seed=8))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_layout_has_every_requested_file(dataset: Path) -> None:
    names = set(_files(dataset))
    assert {ANNOTATION_FILES[t] for t in ("detection", "segmentation", "classification")} | {METADATA_FILE} <= names
    assert ANNOTATION_FILES["pose"] not in names
    assert sum(n.startswith("images/") for n in names) == 60


def test_only_requested_tasks_are_written(tmp_path: Path) -> None:
    root = generate(tmp_path / "d", images=3, tasks=("detection",))
    assert not (root / ANNOTATION_FILES["segmentation"]).exists()
    assert not (root / ANNOTATION_FILES["pose"]).exists()


def test_pose_keypoints_are_centre_top_bottom_inside_the_box(tmp_path: Path) -> None:
    root = generate(tmp_path / "p", images=8, seed=5, tasks=("detection", "pose"), background_fraction=0)
    pose, detection = _doc(root, "pose"), _doc(root, "detection")
    assert all(c["keypoints"] == ["centre", "top", "bottom"] for c in pose["classes"])
    assert pose["task_type"] == "pose"
    boxes = [a["bbox"] for i in detection["images"] for a in i["annotations"]]
    anns = [a for i in pose["images"] for a in i["annotations"]]
    assert [a["bbox"] for a in anns] == boxes and anns
    for ann in anns:
        x, y, w, h = ann["bbox"]
        (cx, cy, cv), (tx, ty, tv), (_bx, by, bv) = (ann["keypoints"][k : k + 3] for k in (0, 3, 6))
        assert (cv, tv, bv) == (2, 2, 2) and ann["num_keypoints"] == 3
        assert abs(cx - (x + w / 2)) < 0.02 and abs(cy - (y + h / 2)) < 0.02
        assert abs(ty - y) < 0.02 and abs(by - (y + h)) < 0.02 and x - 0.01 <= tx <= x + w + 0.01


@pytest.mark.parametrize("task", ["detection", "segmentation", "classification"])
def test_annotation_files_conform_to_the_format(dataset: Path, task: str) -> None:
    doc = _doc(dataset, task)
    assert doc["format_version"] == "1.0" and TASK_TYPES[doc["task_type"]] == task
    uuid.UUID(doc["dataset_id"])
    for stamp in (doc["created_at"], doc["last_modified_at"]):
        assert datetime.fromisoformat(stamp).tzinfo is not None
    classes = {c["id"]: c["name"] for c in doc["classes"]}
    assert sorted(classes.values()) == ["circle", "square", "triangle"]
    assert all(c["color"].startswith("#") and len(c["color"]) == 7 for c in doc["classes"])
    assert len({i["id"] for i in doc["images"]}) == len(doc["images"]) == 60
    ann_ids = [a["id"] for i in doc["images"] for a in i["annotations"]]
    assert len(set(ann_ids)) == len(ann_ids) == doc["statistics"]["total_annotations"]
    for image in doc["images"]:
        assert normalize_file_name(image["file_name"]) == image["file_name"]
        with Image.open(dataset / "images" / image["file_name"]) as im:
            assert im.size == (image["width"], image["height"]) and image["depth"] == len(im.getbands())
        assert "split" not in image
        for ann in image["annotations"]:
            assert ann["image_id"] == image["id"] and classes[ann["class_id"]] == ann["class_name"]
            if task == "classification":
                continue
            x, y, w, h = ann["bbox"]
            assert ann["bbox_format"] == "xywh" and w > 0 and h > 0 and ann["iscrowd"] == 0
            assert x >= 0 and y >= 0 and x + w <= image["width"] + 0.01 and y + h <= image["height"] + 0.01
            if task == "segmentation":
                (polygon,) = ann["segmentation"]
                assert len(polygon) >= 6 and len(polygon) % 2 == 0 and ann["area"] > 0
                xs, ys = polygon[0::2], polygon[1::2]
                assert (
                    x - 0.01 <= min(xs) and max(xs) <= x + w + 0.01 and y - 0.01 <= min(ys) and max(ys) <= y + h + 0.01
                )
                if ann["class_name"] == "circle":
                    assert 16 <= len(xs) <= 24


def test_contents_across_tasks(dataset: Path) -> None:
    det, seg, cls = (_doc(dataset, t) for t in ("detection", "segmentation", "classification"))
    backgrounds = [i for i in det["images"] if not i["annotations"]]
    assert len(backgrounds) == 6  # background_fraction=0.1 of 60
    for d, s, c in zip(det["images"], seg["images"], cls["images"], strict=True):
        assert d["file_name"] == s["file_name"] == c["file_name"]
        assert 0 <= len(d["annotations"]) <= 4
        assert [a["bbox"] for a in d["annotations"]] == [a["bbox"] for a in s["annotations"]]
        # Classification: the class of the largest shape, one label per image, none for backgrounds.
        if d["annotations"]:
            largest = max(s["annotations"], key=lambda a: a["area"])
            assert [a["class_name"] for a in c["annotations"]] == [largest["class_name"]]
        else:
            assert c["annotations"] == []


def test_splits_add_a_split_without_changing_pixels(tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain", images=40, seed=1)
    split = generate(tmp_path / "split", images=40, seed=1, splits=True)
    assert {k: v for k, v in _files(plain).items() if k.startswith("images/")} == {
        k: v for k, v in _files(split).items() if k.startswith("images/")
    }
    values = [i["split"] for i in _doc(split, "detection")["images"]]
    assert set(values) <= {"train", "val", "test"} and values.count("train") > values.count("val") > 0


def test_zip_is_deterministic_and_holds_the_dataset(dataset: Path, tmp_path: Path) -> None:
    a, b = zip_dataset(dataset, tmp_path / "a.zip"), zip_dataset(dataset, tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == _files(dataset)
        kinds = {i.filename.rsplit(".", 1)[1]: i.compress_type for i in zf.infolist()}
        assert kinds == {"jpg": zipfile.ZIP_STORED, "json": zipfile.ZIP_DEFLATED}


def test_cli_writes_the_dataset_and_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path / "cli"), "--images", "5", "--seed", "2", "--size", "96x64", "--zip"])
    assert capsys.readouterr().out.split() == [str(tmp_path / "cli"), str(tmp_path / "cli.zip")]
    assert zipfile.is_zipfile(tmp_path / "cli.zip")
    assert _doc(tmp_path / "cli", "detection")["images"][0]["width"] == 96
