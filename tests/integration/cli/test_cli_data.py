"""`vtp data`: upload a folder with its progress bar, list, show, split, snapshot, download; a bad
dataset's problems as one table (exit 1); an unknown id (exit 3)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from vtp_dice.format import Task
from vtp_dice.sample import generate, zip_dataset

from .conftest import Vtp

pytestmark = pytest.mark.integration
Uploaded = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def test_upload_a_folder(uploaded: Uploaded) -> None:
    result, dataset = uploaded
    assert dataset["name"] == "cli shapes" and dataset["image_count"] == 24
    size = (Path(result.stderr.split()[1]).stem, re.search(r"([\d.]+)/([\d.]+) kB", result.stderr))
    assert size[0] == "shapes" and size[1] and size[1].group(1) == size[1].group(2)  # the byte bar, at its end
    assert f"vtp train data={dataset['id']}" in result.stdout
    assert "detection" in result.stdout  # the content table


def test_list_show_split_snapshot_download(vtp: Vtp, uploaded: Uploaded, tmp_path: Path) -> None:
    dataset_id = uploaded[1]["id"]
    listed = vtp.json("data", "ls")
    assert dataset_id in [d["id"] for d in listed["items"]]
    assert dataset_id in vtp("data", "ls").stdout

    split = vtp.json("data", "split", dataset_id, "--train", "0.75", "--val", "0.25", "--seed", "3")
    assert (split["train"], split["val"], split["seed"]) == (0.75, 0.25, 3)
    assert "train 0.75 / val 0.25" in vtp("data", "split", dataset_id).stdout

    # A tag of its own: training on this dataset (another file's tests, earlier) took the automatic v1, v2...
    snapshot = vtp.json("data", "snapshot", dataset_id, "--tag", "cli-pinned")
    assert snapshot["version_tag"] == "cli-pinned"
    shown = vtp("data", "show", dataset_id)
    assert snapshot["id"] in shown.stdout and "Snapshots" in shown.stdout

    result = vtp("data", "download", dataset_id, "--snapshot", "cli-pinned", "--format", "yolo", "--task", "detect",
                 "-o", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("*.zip")
    assert f"saved {archive}" in result.stdout
    assert any(name.endswith("data.yaml") for name in zipfile.ZipFile(archive).namelist())


def test_download_without_task_takes_the_only_task_or_asks(vtp: Vtp, tmp_path: Path) -> None:
    def snapshotted(name: str, tasks: tuple[Task, ...]) -> str:
        root = generate(tmp_path / name, images=6, size=(64, 64), seed=2, tasks=tasks, background_fraction=0)
        dataset = vtp.json("data", "upload", str(root), "--name", name)
        vtp.json("data", "snapshot", dataset["id"])
        return str(dataset["id"])

    (tmp_path / "out").mkdir()
    one = vtp("data", "download", snapshotted("pose only", ("pose",)), "--format", "yolo", "-o", str(tmp_path / "out"))
    assert one.returncode == 0, one.stderr
    (archive,) = (tmp_path / "out").glob("*.zip")
    assert archive.name.endswith("-yolo-pose.zip")
    assert "kpt_shape" in zipfile.ZipFile(archive).read("data.yaml").decode()

    several = vtp("data", "download", snapshotted("two tasks", ("detection", "segmentation")), "--format", "yolo")
    assert several.returncode == 1
    assert "(task_required, HTTP 422)" in several.stderr and "one of: detection, segmentation" in several.stderr
    assert "hint: choose one with --task" in several.stderr


def test_a_bad_zip_exits_1_with_its_problem(vtp: Vtp, tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"this is not a zip")
    result = vtp("data", "upload", str(bad))
    assert result.returncode == 1
    assert "(archive_rejected, HTTP 422)" in result.stderr and "not_a_zip" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_annotations_come_back_as_one_table(vtp: Vtp, tmp_path: Path) -> None:
    root = generate(tmp_path / "bad", images=4, size=(64, 64), seed=1, tasks=("detection",), background_fraction=0)
    annotations = root / "annotations_detection.json"
    doc = json.loads(annotations.read_text())
    doc["images"][0]["annotations"][0]["bbox"] = [10, 10, 500, 500]
    doc["images"][1]["annotations"][0]["class_id"] = 99
    annotations.write_text(json.dumps(doc))
    result = vtp("data", "upload", str(zip_dataset(root, tmp_path / "bad.zip")), "--name", "bad")
    assert result.returncode == 1
    assert "(dataset_invalid, HTTP 422)" in result.stderr
    header = next(line for line in result.stderr.splitlines() if "pointer" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["file", "pointer", "code", "message"]
    rows = {code: line for line in result.stderr.splitlines() for code in ("bbox_out_of_bounds", "unknown_class_id")
            if code in line}  # fmt: skip
    assert set(rows) == {"bbox_out_of_bounds", "unknown_class_id"}
    assert "annotations_detection.json" in rows["bbox_out_of_bounds"]
    assert "/images/0/annotations/0/bbox" in rows["bbox_out_of_bounds"]
    problem = json.loads(vtp("data", "upload", str(tmp_path / "bad.zip"), "--json").stdout)
    assert problem["code"] == "dataset_invalid" and len(problem["errors"]) >= 2


def test_unknown_dataset_exits_3(vtp: Vtp) -> None:
    result = vtp("data", "show", str(uuid.uuid4()))
    assert result.returncode == 3
    assert "HTTP 404" in result.stderr
    assert vtp("data", "show", "not-an-id").returncode == 2
