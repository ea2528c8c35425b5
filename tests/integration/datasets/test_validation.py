"""Every DICE validation rule, sent through the public API: 422 problem+json, nothing stored."""

from __future__ import annotations

import copy
import io
import uuid
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from .conftest import StoredState, error_codes, upload
from .dice_builder import DiceZip, classification_doc, jpeg, valid_detection

pytestmark = pytest.mark.integration
DET = "annotations_detection.json"


def _det(z: DiceZip) -> dict:
    return z.docs[DET]


def _set(path: Callable[[DiceZip], dict], key: str, value: object) -> Callable[[DiceZip], None]:
    def mutate(z: DiceZip) -> None:
        path(z)[key] = value

    return mutate


def _segmentation(z: DiceZip) -> None:
    doc = copy.deepcopy(_det(z))
    doc["task_type"] = "segmentation"
    for image in doc["images"]:
        for ann in image["annotations"]:
            ann["segmentation"] = [[4, 4, 24, 4, 24, 20, 4, 20]]
    doc["images"][0]["annotations"][0]["segmentation"] = [[4, 4, 24, 4]]
    z.docs["annotations_segmentation.json"] = doc


def _pose(z: DiceZip) -> None:
    doc = copy.deepcopy(_det(z))
    doc["task_type"] = "pose"
    for cls in doc["classes"]:
        cls["keypoints"], cls["skeleton"] = ["a", "b"], [[1, 2]]
    for image in doc["images"]:
        for ann in image["annotations"]:
            ann["keypoints"], ann["num_keypoints"] = [5, 5, 2, 10, 10, 1], 2
    doc["images"][0]["annotations"][0]["keypoints"] = [5, 5, 3, 10, 10, 1]
    z.docs["annotations_pose.json"] = doc


def _truncated(z: DiceZip) -> None:
    name = _det(z)["images"][0]["file_name"]
    z.images[name] = z.images[name][: len(z.images[name]) // 2]


def _rotated(z: DiceZip) -> None:
    name = _det(z)["images"][0]["file_name"]
    z.images[name] = jpeg(64, 48, exif_orientation=6)  # decodes as 48x64, declared 64x48


CASES: dict[str, tuple[Callable[[DiceZip], None], str]] = {
    "format_version_missing": (lambda z: _det(z).pop("format_version"), "/format_version"),
    "format_version_unsupported": (_set(_det, "format_version", "9.9"), "/format_version"),
    "duplicate_class_id": (lambda z: _det(z)["classes"][1].update(id=0), "/classes/1/id"),
    "duplicate_class_name": (lambda z: _det(z)["classes"][1].update(name="circle"), "/classes/1/name"),
    "duplicate_image_id": (lambda z: _det(z)["images"][1].update(id=1), "/images/1/id"),
    "duplicate_file_name": (lambda z: _det(z)["images"][1].update(file_name=_det(z)["images"][0]["file_name"]), None),
    "image_file_missing": (lambda z: z.images.pop(_det(z)["images"][0]["file_name"]), "/images/0/file_name"),
    "annotation_image_mismatch": (lambda z: _det(z)["images"][0]["annotations"][0].update(image_id=999), None),
    "unknown_class_id": (lambda z: _det(z)["images"][0]["annotations"][0].update(class_id=7), None),
    "class_name_mismatch": (lambda z: _det(z)["images"][0]["annotations"][0].update(class_name="square"), None),
    "bbox_out_of_bounds": (lambda z: _det(z)["images"][0]["annotations"][0].update(bbox=[50, 30, 40, 30]), None),
    "bbox_non_positive": (lambda z: _det(z)["images"][0]["annotations"][0].update(bbox=[5, 5, 0, 10]), None),
    "polygon_too_few_points": (_segmentation, None),
    "keypoint_visibility_invalid": (_pose, None),
    "image_size_mismatch": (lambda z: _det(z)["images"][0].update(width=65), None),
    "invalid_split": (lambda z: _det(z)["images"][0].update(split="holdout"), "/images/0/split"),
    "image_undecodable": (_truncated, None),
    "no_annotation_file": (lambda z: z.docs.clear(), None),
    "invalid_json": (lambda z: z.extra.update({"annotations_classification.json": b"{not json"}), None),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_is_reported_and_nothing_is_stored(admin: httpx.Client, stored: StoredState, code: str):
    dataset = valid_detection(6)
    mutate, pointer = CASES[code]
    mutate(dataset)
    with stored.unchanged():
        response = upload(admin, dataset.build(), f"bad-{code}-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "dataset_invalid"
    assert code in error_codes(response)
    problem = next(e for e in response.json()["errors"] if e["code"] == code)
    assert problem.get("file") or code == "no_annotation_file", problem
    if pointer:
        assert problem["pointer"] == pointer


def test_exif_rotation_is_applied_before_comparing_sizes(admin: httpx.Client, stored: StoredState):
    dataset = valid_detection(4)
    _rotated(dataset)
    with stored.unchanged():
        response = upload(admin, dataset.build(), f"exif-{uuid.uuid4().hex[:6]}")
    assert "image_size_mismatch" in error_codes(response)
    _det(dataset)["images"][0].update(width=48, height=64)
    ok = upload(admin, dataset.build(), f"exif-ok-{uuid.uuid4().hex[:6]}")
    assert ok.status_code == 201, ok.text


def test_every_problem_is_reported_at_once(admin: httpx.Client, stored: StoredState):
    dataset = valid_detection(6)
    for code in (
        "duplicate_class_name",
        "unknown_class_id",
        "bbox_non_positive",
        "invalid_split",
        "image_file_missing",
    ):
        CASES[code][0](dataset)
    with stored.unchanged():
        response = upload(admin, dataset.build(), f"many-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 422
    assert {
        "duplicate_class_name",
        "unknown_class_id",
        "bbox_non_positive",
        "invalid_split",
        "image_file_missing",
    } <= set(error_codes(response))


def test_problems_are_capped(admin: httpx.Client, stored: StoredState):
    dataset = valid_detection(80)
    for image in _det(dataset)["images"]:
        image["split"] = "nope"
    with stored.unchanged():
        response = upload(admin, dataset.build(), f"cap-{uuid.uuid4().hex[:6]}")
    codes = error_codes(response)
    assert len(codes) == 51 and codes[-1] == "too_many_problems"


def test_png_named_jpg_is_accepted_because_content_is_sniffed(admin: httpx.Client):
    dataset = valid_detection(3)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buf, "PNG")
    dataset.images[_det(dataset)["images"][0]["file_name"]] = buf.getvalue()
    response = upload(admin, dataset.build(), f"sniffed-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 201, response.text


def test_form_fields_are_validated_together(admin: httpx.Client, stored: StoredState):
    with stored.unchanged():
        response = admin.post("/api/v1/datasets", data={"description": "x" * 3000}, files={"other": ("a", b"x")})
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"#/form/name", "#/form/description", "#/form/file"}


def test_classification_only_dataset_is_valid(admin: httpx.Client):
    dataset = valid_detection(4)
    doc = classification_doc(copy.deepcopy(_det(dataset)["images"]))
    for image in doc["images"]:
        image["annotations"] = [
            {k: v for k, v in a.items() if k in ("id", "image_id", "class_id", "class_name", "attributes")}
            for a in image["annotations"]
        ]
    dataset.docs = {"annotations_classification.json": doc}
    response = upload(admin, dataset.build(), f"cls-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 201, response.text
    assert set(response.json()["tasks"]) == {"classification"}


def test_nul_in_a_class_or_keypoint_name_is_refused_and_nothing_is_stored(admin: httpx.Client, stored: StoredState):
    # Class names end up in PostgreSQL (tasks, statistics), which stores no U+0000: this was a 500.
    dataset = valid_detection(4)
    _pose(dataset)
    _det(dataset)["classes"][0]["name"] = "cir\x00cle"
    for image in _det(dataset)["images"]:
        for ann in image["annotations"]:
            if ann["class_id"] == 0:
                ann["class_name"] = "cir\x00cle"
    dataset.docs["annotations_pose.json"]["classes"][1]["keypoints"] = ["a", "b\x00"]
    with stored.unchanged():
        response = upload(admin, dataset.build(), f"nul-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 422 and response.json()["code"] == "dataset_invalid", response.text
    at = {(e["file"], e["pointer"]) for e in response.json()["errors"] if e["code"] == "schema_violation"}
    assert at == {(DET, "/classes/0/name"), ("annotations_pose.json", "/classes/1/keypoints")}
