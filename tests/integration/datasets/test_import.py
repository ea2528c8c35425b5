"""YOLO and COCO uploads through the gateway: imported, split as given, downloaded back unchanged; refused with
the original file and line or JSON pointer, nothing stored."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import httpx
import pytest
import yaml

from vtp_dice.sample_foreign import NAMES, coco_zip, yolo_zip

from .conftest import StoredState, error_codes, upload

pytestmark = pytest.mark.integration
YOLO_TASKS = ["detection", "segmentation", "pose", "classification"]
COCO_TASKS = ["detection", "segmentation", "pose"]


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _post(api: httpx.Client, data: bytes, fmt: str | None = None) -> httpx.Response:
    fields = {"name": f"import-{uuid.uuid4().hex[:8]}"} | ({"format": fmt} if fmt else {})
    return api.post("/api/v1/datasets", data=fields, files={"file": ("d.zip", data, "application/zip")}, timeout=120)


def _snapshot_download(api: httpx.Client, dataset: dict[str, Any], fmt: str, task: str) -> dict[str, bytes]:
    snap = api.post(f"/api/v1/datasets/{dataset['id']}/snapshots")
    assert snap.status_code == 201, snap.text
    url = f"/api/v1/datasets/{dataset['id']}/snapshots/{snap.json()['id']}/download"
    response = api.get(url, params={"format": fmt, "task": task}, timeout=60)
    assert response.status_code == 200, response.text
    return _files(response.content)


def _rows(text: bytes) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in text.decode().splitlines() if line.strip()]


def _close(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(abs(u - v) <= 1e-6 for u, v in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("task", YOLO_TASKS)
def test_yolo_upload_imports_keeps_its_split_and_round_trips(admin: httpx.Client, task: str) -> None:
    original = _files(yolo_zip(task))  # type: ignore[arg-type]
    created = _post(admin, _zip(original))
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert list(dataset["tasks"]) == [task] and dataset["image_count"] == 9
    split = admin.get(f"/api/v1/datasets/{dataset['id']}/split").json()
    assert split["counts"] == {"train": 6, "val": 3, "test": 0}
    out = _snapshot_download(admin, dataset, "yolo", task)
    if task == "classification":
        assert {k for k in out if k.endswith(".jpg")} == {k for k in original if k.endswith(".jpg")}
        return
    labels = {k: v for k, v in original.items() if k.startswith("labels/")}
    assert {k for k in out if k.startswith("labels/")} == set(labels)
    for path, text in labels.items():
        assert _close(_rows(out[path]), _rows(text)), path
    assert yaml.safe_load(out["data.yaml"])["names"] == dict(enumerate(NAMES))


@pytest.mark.parametrize("task", COCO_TASKS)
def test_coco_upload_imports_and_round_trips(admin: httpx.Client, task: str) -> None:
    data, originals = coco_zip(task)  # type: ignore[arg-type]
    created = _post(admin, data, "coco")
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert task in dataset["tasks"]
    out = _snapshot_download(admin, dataset, "coco", task)
    kind = "person_keypoints" if task == "pose" else "instances"
    fields = ["id", "image_id", "category_id", "bbox", "iscrowd", "segmentation", "keypoints"]
    for split in ("train", "val"):
        want, got = (
            originals[f"annotations/{kind}_{split}.json"],
            json.loads(out[f"annotations/instances_{split}.json"]),
        )
        assert [(c["id"], c["name"]) for c in got["categories"]] == [(c["id"], c["name"]) for c in want["categories"]]
        assert {i["file_name"]: i["id"] for i in got["images"]} == {i["file_name"]: i["id"] for i in want["images"]}
        assert len(got["annotations"]) == len(want["annotations"])
        for a, b in zip(got["annotations"], want["annotations"], strict=True):
            assert {k: a[k] for k in fields if k in b} == {k: b[k] for k in fields if k in b}


def test_a_new_version_from_yolo(admin: httpx.Client) -> None:
    created = _post(admin, yolo_zip("detection"))
    assert created.status_code == 201, created.text
    more = yolo_zip("detection", {"train": 2, "val": 1}, seed=3, prefix="more")
    url = f"/api/v1/datasets/{created.json()['id']}/versions"
    added = admin.post(url, data={"format": "yolo"}, files={"file": ("d.zip", more, "application/zip")}, timeout=120)
    assert added.status_code == 201, added.text
    assert added.json()["image_count"] == 3  # a task's annotation file replaces the one before it


def _yolo_line(files: dict[str, bytes], path: str, n: int, text: str) -> None:
    lines = files[path].decode().splitlines()
    lines[n - 1] = text
    files[path] = ("\n".join(lines) + "\n").encode()


def _yolo_bad(task: str, line: str) -> bytes:
    files = _files(yolo_zip(task))  # type: ignore[arg-type]
    _yolo_line(files, "labels/train/img_0005.txt", 2, line)
    return _zip(files)


def _coco_bad(change: str) -> bytes:
    files = _files(coco_zip("segmentation")[0])
    doc = json.loads(files["annotations/instances_val.json"])
    if change == "image_id":
        doc["annotations"][1]["image_id"] = 4242
    else:
        doc["annotations"][1]["segmentation"] = {"size": [48, 64], "counts": "#not an rle"}
    files["annotations/instances_val.json"] = json.dumps(doc).encode()
    return _zip(files)


LABEL = "labels/train/img_0005.txt"
BAD: dict[str, tuple[bytes, str, dict[str, Any]]] = {
    "class not in names": (
        _yolo_bad("detection", "7 0.5 0.5 0.1 0.1"),
        "yolo_class_unknown",
        {"file": LABEL, "line": 2},
    ),
    "coordinate > 1": (
        _yolo_bad("detection", "0 0.5 1.25 0.1 0.1"),
        "yolo_coordinate_out_of_range",
        {"file": LABEL, "line": 2},
    ),
    "polygon of 2 points": (
        _yolo_bad("segmentation", "1 0.1 0.1 0.3 0.3"),
        "polygon_too_few_points",
        {"file": LABEL, "line": 2},
    ),
    "unknown image_id": (
        _coco_bad("image_id"),
        "coco_image_id_unknown",
        {"file": "annotations/instances_val.json", "pointer": "/annotations/1/image_id"},
    ),
    "RLE that does not decode": (
        _coco_bad("rle"),
        "coco_rle_invalid",
        {"file": "annotations/instances_val.json", "pointer": "/annotations/1/segmentation"},
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_import_names_the_original_place_and_stores_nothing(
    admin: httpx.Client, stored: StoredState, case: str
) -> None:
    data, code, where = BAD[case]
    with stored.unchanged():
        response = _post(admin, data)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "dataset_invalid"
    problem = next(e for e in response.json()["errors"] if e["code"] == code)
    assert {k: problem.get(k) for k in where} == where, problem


def test_format_field_is_checked(admin: httpx.Client, stored: StoredState) -> None:
    with stored.unchanged():
        response = _post(admin, yolo_zip("detection"), "voc")
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert response.json()["errors"][0]["pointer"] == "#/form/format"


def test_a_zip_of_no_known_format(admin: httpx.Client, stored: StoredState) -> None:
    with stored.unchanged():
        response = upload(admin, _zip({"notes/readme.txt": b"hi"}), f"none-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 422
    assert error_codes(response) == ["unknown_dataset_format"]


def test_named_format_is_used(admin: httpx.Client, stored: StoredState) -> None:
    with stored.unchanged():
        response = _post(admin, yolo_zip("detection"), "coco")
    assert response.status_code == 422
    assert "coco_no_annotation_file" in error_codes(response)


def test_hostile_archive_checks_apply_to_imports(admin: httpx.Client, stored: StoredState) -> None:
    files = _files(yolo_zip("detection"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("../labels/train/escape.txt", b"0 0.5 0.5 0.1 0.1\n")
    with stored.unchanged():
        response = _post(admin, buf.getvalue(), "yolo")
    assert response.status_code == 422
    assert response.json()["code"] == "archive_rejected"
    assert "zip_slip" in error_codes(response)


def test_a_stored_split_configuration_still_wins_over_the_imported_split(admin: httpx.Client) -> None:
    created = _post(admin, yolo_zip("detection"))
    assert created.status_code == 201, created.text
    url = f"/api/v1/datasets/{created.json()['id']}/split"
    assert admin.get(url).json()["counts"] == {"train": 6, "val": 3, "test": 0}  # the upload's own split
    put = admin.put(url, json={"method": "auto", "train": 0.0, "val": 1.0, "test": 0.0})
    assert put.status_code == 200, put.text
    assert put.json()["counts"] == {"train": 0, "val": 9, "test": 0}
