"""Validation of DICE annotation files: every code, all problems at once, the cap."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from vtp_dice.format import DICE_TASK_TYPE, TASK_TYPES, TASKS, Problem, Task
from vtp_dice.manifest import ImageEntry
from vtp_dice.validate import (
    canonicalize_doc,
    image_classes,
    parse_annotation_file,
    referenced_images,
    validate_annotation_doc,
)

DET = "annotations_detection.json"


def entry(name: str, width: int = 100, height: int = 80) -> ImageEntry:
    return ImageEntry(name, "0" * 64, 1000, width, height, "PNG")


def ann(**over: Any) -> dict[str, Any]:
    base = {"id": 1, "image_id": 1, "class_id": 0, "class_name": "cat", "attributes": {}}
    return {**base, **over}


def image(id: int = 1, file_name: str = "a.png", anns: list[Any] | None = None, **over: Any) -> dict[str, Any]:
    base = {"id": id, "file_name": file_name, "width": 100, "height": 80, "depth": 3, "split": "train"}
    return {**base, "annotations": [] if anns is None else anns, **over}


def doc(task_type: str = "object_detection", images: list[Any] | None = None) -> dict[str, Any]:
    geometry: dict[str, dict[str, Any]] = {
        "classification": {},
        "object_detection": {"bbox": [10, 10, 20, 20], "bbox_format": "xywh", "area": 400.0, "iscrowd": 0},
        "segmentation": {"bbox": [10, 10, 20, 20], "segmentation": [[10, 10, 30, 10, 30, 30]]},
        "pose": {"bbox": [10, 10, 20, 20], "keypoints": [12, 12, 2, 20, 20, 1], "num_keypoints": 2},
    }
    classes: list[dict[str, Any]] = [{"id": 0, "name": "cat", "color": "#d96826"}, {"id": 1, "name": "dog"}]
    if task_type == "pose":
        classes[0].update(keypoints=["nose", "tail"], skeleton=[[1, 2]])
    return {
        "format_version": "1.0",
        "dataset_id": "8f97389d-aa20-4de3-9872-d3cf8909a53c",
        "dataset_name": "pets",
        "task_type": task_type,
        "version": 1,
        "classes": classes,
        "images": images if images is not None else [image(anns=[ann(**geometry[task_type])])],
        "statistics": {"total_images": 999},
    }


def check(
    d: dict[str, Any], task: Task = "detection", images: dict[str, ImageEntry] | None = None, **kw: Any
) -> list[Problem]:
    found = {"a.png": entry("a.png")} if images is None else images
    return validate_annotation_doc(DET, task, d, found, kw.pop("broken", frozenset()), **kw)


def triples(problems: list[Problem]) -> list[tuple[str, str | None, str | None]]:
    return [(p.code, p.file, p.pointer) for p in problems]


# --- parse_annotation_file ---------------------------------------------------------------------


def test_parse_valid_file() -> None:
    task, parsed, problems = parse_annotation_file(DET, json.dumps(doc()).encode())
    assert (task, problems) == ("detection", [])
    assert parsed == doc()


def test_parse_accepts_a_utf8_bom() -> None:
    assert parse_annotation_file(DET, b"\xef\xbb\xbf" + json.dumps(doc()).encode())[2] == []


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": "\xff"}', b'{"a": NaN}', b"[" * 100_000])
def test_parse_invalid_json(raw: bytes) -> None:
    task, parsed, problems = parse_annotation_file(DET, raw)
    assert (task, parsed) == (None, None)
    assert [(p.code, p.file) for p in problems] == [("invalid_json", DET)]


def test_parse_non_object_is_a_schema_violation() -> None:
    assert triples(parse_annotation_file(DET, b"[]")[2]) == [("schema_violation", DET, "")]


@pytest.mark.parametrize("task_type", ["detection", None, 3, "keypoints"])
def test_parse_unknown_task_type(task_type: Any) -> None:
    d = {**doc(), "task_type": task_type}
    task, _, problems = parse_annotation_file(DET, json.dumps(d).encode())
    assert task is None
    assert triples(problems) == [("unknown_task_type", DET, "/task_type")]


def test_parse_format_version_missing_and_unsupported() -> None:
    d = doc()
    del d["format_version"]
    assert triples(parse_annotation_file(DET, json.dumps(d).encode())[2]) == [
        ("format_version_missing", DET, "/format_version")
    ]
    d["format_version"] = "2.0"
    assert triples(parse_annotation_file(DET, json.dumps(d).encode())[2]) == [
        ("format_version_unsupported", DET, "/format_version")
    ]


def test_parse_task_type_mismatch() -> None:
    path = "annotations_classification.json"
    task, _, problems = parse_annotation_file(path, json.dumps(doc("pose")).encode())
    assert task == "pose"
    assert triples(problems) == [("task_type_mismatch", path, "/task_type")]


def test_parse_legacy_file_takes_its_task_from_task_type() -> None:
    task, _, problems = parse_annotation_file("annotations.json", json.dumps(doc("segmentation")).encode())
    assert (task, problems) == ("segmentation", [])


def test_parse_reports_header_problems_together() -> None:
    raw = json.dumps({"task_type": "video", "format_version": "0.9"}).encode()
    assert [p.code for p in parse_annotation_file(DET, raw)[2]] == ["unknown_task_type", "format_version_unsupported"]


# --- validate_annotation_doc: valid documents ---------------------------------------------------


@pytest.mark.parametrize(("task", "task_type"), [(t, DICE_TASK_TYPE[t]) for t in TASKS])
def test_valid_documents_have_no_problems(task: Task, task_type: str) -> None:
    assert check(doc(task_type), task) == []


def test_classification_needs_no_geometry_and_background_images_are_fine() -> None:
    d = doc("classification", [image(anns=[ann()]), image(2, "b.png", split=None)])
    assert check(d, "classification", {"a.png": entry("a.png"), "b.png": entry("b.png")}) == []


def test_bbox_within_rounding_tolerance_is_accepted() -> None:
    d = doc(images=[image(anns=[ann(bbox=[-0.5, 0, 100.9, 80.4])])])
    assert check(d) == []


def test_windows_file_name_matches_the_normalized_image() -> None:
    d = doc(images=[image(file_name="sub\\a.png", anns=[ann(bbox=[1, 1, 2, 2])])])
    assert check(d, images={"sub/a.png": entry("sub/a.png")}) == []


def test_broken_images_are_not_reported_missing() -> None:
    assert check(doc(), images={}, broken=frozenset({"a.png"})) == []


# --- validate_annotation_doc: one test per code -------------------------------------------------

Mutate = Callable[[dict[str, Any]], object]
A0 = "/images/0/annotations/0"
OD = "object_detection"


def first_ann(d: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = d["images"][0]["annotations"][0]
    return result


CASES: list[tuple[str, str, Mutate, str]] = [
    ("schema_violation", OD, lambda d: d["images"][0].update(width="100"), "/images/0/width"),
    ("duplicate_class_id", OD, lambda d: d["classes"].append({"id": 0, "name": "x"}), "/classes/2/id"),
    ("duplicate_class_name", OD, lambda d: d["classes"].append({"id": 7, "name": "dog"}), "/classes/2/name"),
    ("duplicate_image_id", OD, lambda d: d["images"].append(image(1, "b.png")), "/images/1/id"),
    ("duplicate_file_name", OD, lambda d: d["images"].append(image(2, "a.png")), "/images/1/file_name"),
    ("invalid_file_name", OD, lambda d: d["images"].append(image(2, "../b.png")), "/images/1/file_name"),
    ("image_file_missing", OD, lambda d: d["images"].append(image(2, "b.png")), "/images/1/file_name"),
    ("annotation_image_mismatch", OD, lambda d: first_ann(d).update(image_id=2), A0 + "/image_id"),
    ("unknown_class_id", OD, lambda d: first_ann(d).update(class_id=9), A0 + "/class_id"),
    ("class_name_mismatch", OD, lambda d: first_ann(d).update(class_name="dog"), A0 + "/class_name"),
    ("bbox_out_of_bounds", OD, lambda d: first_ann(d).update(bbox=[90, 10, 20, 20]), A0 + "/bbox"),
    ("bbox_non_positive", OD, lambda d: first_ann(d).update(bbox=[10, 10, 0, 5]), A0 + "/bbox"),
    (
        "polygon_too_few_points",
        "segmentation",
        lambda d: first_ann(d).update(segmentation=[[1, 1, 2, 2]]),
        A0 + "/segmentation/0",
    ),
    ("keypoint_visibility_invalid", "pose", lambda d: first_ann(d)["keypoints"].__setitem__(5, 3), A0 + "/keypoints/5"),
    ("image_size_mismatch", OD, lambda d: d["images"][0].update(width=80, height=100), "/images/0/width"),
    ("invalid_split", OD, lambda d: d["images"][0].update(split="training"), "/images/0/split"),
]


@pytest.mark.parametrize(("code", "task_type", "mutate", "at"), CASES, ids=[c[0] for c in CASES])
def test_each_code_is_reported_alone_with_its_pointer(code: str, task_type: str, mutate: Mutate, at: str) -> None:
    d = doc(task_type)
    mutate(d)
    task = TASK_TYPES[task_type]
    found = {"a.png": entry("a.png")}
    if code in ("duplicate_image_id", "image_size_mismatch"):
        found["b.png"] = entry("b.png")
    if code == "image_size_mismatch":
        found["a.png"] = entry("a.png", 100, 80)  # decoded (EXIF applied) 100x80, declared 80x100
    assert triples(check(d, task, found)) == [(code, DET, at)]


@pytest.mark.parametrize(
    ("task", "field", "value", "at"),
    [
        ("detection", "bbox", [1, 2, 3], A0 + "/bbox"),
        ("detection", "bbox", None, A0 + "/bbox"),
        ("detection", "bbox_format", "xyxy", A0 + "/bbox_format"),
        ("detection", "class_id", True, A0 + "/class_id"),
        ("segmentation", "segmentation", [[1, 1, 2, 2, 3]], A0 + "/segmentation/0"),
        ("segmentation", "segmentation", {"counts": "rle"}, A0 + "/segmentation"),
        ("pose", "keypoints", [1, 1, 2, 3], A0 + "/keypoints"),
        ("pose", "keypoints", [1, 1, 2], A0 + "/keypoints"),  # the class names two keypoints
    ],
)
def test_schema_violations_of_geometry(task: Task, field: str, value: Any, at: str) -> None:
    d = doc(DICE_TASK_TYPE[task])
    if value is None:
        del first_ann(d)[field]
    else:
        first_ann(d)[field] = value
    assert triples(check(d, task)) == [("schema_violation", DET, at)]


def test_unusable_classes_do_not_flood_with_unknown_class_ids() -> None:
    d = doc()
    d["classes"] = {"0": "cat"}
    assert triples(check(d)) == [("schema_violation", DET, "/classes")]


def test_many_errors_are_reported_at_once_with_pointers() -> None:
    d = doc(
        images=[
            image(anns=[ann(bbox=[10, 10, -1, 5]), ann(id=2, class_id=4, bbox=[0, 0, 500, 10])]),
            image(1, "C:/x.png", split="holdout"),
            image(3, "b.png", width=0, anns=[ann(id=3, image_id=1, class_name="dog", bbox=[1, 1, 1, 1]), "oops"]),
            image(4, "gone.png"),
        ]
    )
    d["classes"].append({"id": 1, "name": "cat"})
    found = {"a.png": entry("a.png"), "b.png": entry("b.png")}
    assert triples(check(d, images=found)) == [
        ("duplicate_class_id", DET, "/classes/2/id"),
        ("duplicate_class_name", DET, "/classes/2/name"),
        ("bbox_non_positive", DET, "/images/0/annotations/0/bbox"),
        ("unknown_class_id", DET, "/images/0/annotations/1/class_id"),
        ("bbox_out_of_bounds", DET, "/images/0/annotations/1/bbox"),
        ("duplicate_image_id", DET, "/images/1/id"),
        ("invalid_file_name", DET, "/images/1/file_name"),
        ("invalid_split", DET, "/images/1/split"),
        ("schema_violation", DET, "/images/2/width"),
        ("annotation_image_mismatch", DET, "/images/2/annotations/0/image_id"),
        ("class_name_mismatch", DET, "/images/2/annotations/0/class_name"),
        ("schema_violation", DET, "/images/2/annotations/1"),
        ("image_file_missing", DET, "/images/3/file_name"),
    ]


def test_problem_cap_appends_one_too_many_problems() -> None:
    d = doc(images=[image(i, f"missing-{i}.png") for i in range(10)])
    problems = check(d, max_problems=4)
    assert [p.code for p in problems] == ["image_file_missing"] * 4 + ["too_many_problems"]
    assert problems[-1].file == DET and problems[-1].pointer is None
    assert len(check(d, max_problems=10)) == 10  # exactly at the cap: nothing dropped, no marker


# --- canonical form and helpers -----------------------------------------------------------------


def test_canonicalize_doc_normalizes_file_names_and_keeps_the_rest() -> None:
    d = doc(images=[image(file_name="sub\\dir\\a.png")])
    original = copy.deepcopy(d)
    out = canonicalize_doc(d)
    assert out["images"][0]["file_name"] == "sub/dir/a.png"
    assert out["statistics"] == {"total_images": 999}
    assert {k: v for k, v in out.items() if k != "images"} == {k: v for k, v in d.items() if k != "images"}
    assert d == original  # a copy: the input is untouched


def test_referenced_images_and_image_classes() -> None:
    d = doc(
        images=[
            image(file_name="x\\a.png", anns=[ann(), ann(id=2, class_id=1, class_name="dog"), ann(id=3)]),
            image(2, "b.png"),
            image(3, "../evil.png", anns=[ann()]),
        ]
    )
    assert referenced_images(d) == {"x/a.png", "b.png"}
    assert image_classes("detection", d) == {"x/a.png": ["cat", "dog", "cat"], "b.png": []}
