"""Split assignment: reproducible, ratio-exact, stratified; manual and partial semantics."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from vtp_dice.format import Split, Task
from vtp_dice.splits import (
    DEFAULT_SPLIT,
    SplitConfig,
    SplitError,
    assign,
    effective,
    labeled_splits,
    strata_from_docs,
)

AUTO = SplitConfig("auto", 0.8, 0.2, 0.0, 42)


def names(n: int, prefix: str = "img") -> list[str]:
    return [f"{prefix}_{i:04d}.jpg" for i in range(n)]


def counts(result: dict[str, Split]) -> tuple[int, int, int]:
    c = Counter(result.values())
    return c["train"], c["val"], c["test"]


# --- configuration ------------------------------------------------------------------------------


def test_default_is_partial_80_20_seed_42() -> None:
    assert SplitConfig("partial", 0.8, 0.2, 0.0, 42, {}) == DEFAULT_SPLIT
    assert DEFAULT_SPLIT.check() == []


@pytest.mark.parametrize(
    "ratios", [(0.8, 0.3, 0.0), (1.1, -0.1, 0.0), (0.0, 0.0, 0.0), (math.nan, 0.5, 0.5), (math.inf, 0, 0)]
)
def test_invalid_ratios(ratios: tuple[float, float, float]) -> None:
    config = SplitConfig("auto", *ratios)
    assert [p.code for p in config.check()] == ["split_ratios_invalid"]
    with pytest.raises(SplitError) as err:
        assign(names(3), {}, {}, config)
    assert [p.code for p in err.value.problems] == ["split_ratios_invalid"]


def test_ratios_within_tolerance_and_other_config_problems() -> None:
    assert SplitConfig("auto", 0.7, 0.2, 0.1 + 1e-9).check() == []
    bad = SplitConfig("random", assignments={"a.jpg": "holdout"})  # type: ignore[arg-type, dict-item]
    assert [(p.code, p.file) for p in bad.check()] == [
        ("split_method_invalid", None),
        ("invalid_split", "images/a.jpg"),
    ]


def test_effective_priority_job_then_stored_then_default() -> None:
    job, stored = SplitConfig("auto", seed=1), SplitConfig("manual", seed=2)
    assert effective(job, stored) is job
    assert effective(None, stored) is stored
    assert effective(None, None) is DEFAULT_SPLIT


# --- automatic assignment -----------------------------------------------------------------------


def test_golden_assignment() -> None:
    """Pins the algorithm: if this changes, existing datasets would silently get different splits."""
    files = names(12)
    strata = {f: "cat" if i < 6 else "dog" for i, f in enumerate(files[:10])}
    got = assign(files, {}, strata, SplitConfig("auto", 0.5, 0.25, 0.25, 7))
    # Checked by hand: cat 3/1/2 (one leftover each for val and test; the unlabeled stratum wins the
    # val tie by hash), dog 2/1/1, unlabeled 1/1/0; totals 6/3/3.
    assert got == {
        "img_0000.jpg": "train",
        "img_0001.jpg": "test",
        "img_0002.jpg": "train",
        "img_0003.jpg": "test",
        "img_0004.jpg": "train",
        "img_0005.jpg": "val",
        "img_0006.jpg": "test",
        "img_0007.jpg": "train",
        "img_0008.jpg": "train",
        "img_0009.jpg": "val",
        "img_0010.jpg": "val",
        "img_0011.jpg": "train",
    }


def test_reproducible_and_seed_dependent() -> None:
    files = names(200)
    strata = {f: f"c{i % 4}" for i, f in enumerate(files)}
    first = assign(files, {}, strata, AUTO)
    assert assign(files, {}, strata, AUTO) == first
    assert assign(list(reversed(files)), {}, strata, AUTO) == first  # input order does not matter
    other = assign(files, {}, strata, SplitConfig("auto", 0.8, 0.2, 0.0, 43))
    assert other != first
    assert counts(other) == counts(first) == (160, 40, 0)


@pytest.mark.parametrize(
    ("ratios", "n", "expected"),
    [
        ((0.7, 0.2, 0.1), 1003, (702, 201, 100)),  # 702.1 / 200.6 / 100.3: the leftover goes to val
        ((1 / 3, 1 / 3, 1 / 3), 1003, (335, 334, 334)),
        ((0.8, 0.2, 0.0), 7, (6, 1, 0)),
        ((1.0, 0.0, 0.0), 5, (5, 0, 0)),
        ((0.8, 0.2, 0.0), 0, (0, 0, 0)),
    ],
)
def test_ratios_respected_within_rounding(
    ratios: tuple[float, float, float], n: int, expected: tuple[int, ...]
) -> None:
    config = SplitConfig("auto", *ratios, seed=5)
    files = names(n)
    assert counts(assign(files, {}, {}, config)) == expected
    # Stratifying must not cost the global ratio: same totals with 7 classes and unlabeled images.
    strata = {f: f"class{i % 7}" for i, f in enumerate(files) if i % 11}
    assert counts(assign(files, {}, strata, config)) == expected


def test_stratified_each_class_gets_its_share() -> None:
    sizes = {"bird": 10, "cat": 11, "dog": 25, "fox": 40, "owl": 97}
    files = [f"{c}/{i}.jpg" for c, n in sizes.items() for i in range(n)] + names(5, "background")
    strata = {f: f.split("/")[0] for f in files if "/" in f}
    result = assign(files, {}, strata, AUTO)
    for cls, n in sizes.items():
        val = sum(1 for f, s in result.items() if strata.get(f) == cls and s == "val")
        assert val >= 1
        assert math.floor(n * 0.2) <= val <= math.ceil(n * 0.2), cls
    assert counts(result) == (150, 38, 0)


def test_many_tiny_classes_still_honour_the_global_ratio() -> None:
    files = names(50)
    result = assign(files, {}, {f: f"class{i}" for i, f in enumerate(files)}, AUTO)
    assert counts(result) == (40, 10, 0)


# --- methods ------------------------------------------------------------------------------------


def test_auto_ignores_labels_and_assignments() -> None:
    files = names(20)
    config = SplitConfig("auto", 0.8, 0.2, 0.0, 42, {files[0]: "test"})
    result = assign(files, dict.fromkeys(files, "test"), {}, config)
    assert result == assign(files, {}, {}, AUTO)
    assert "test" not in result.values()


def test_partial_keeps_assignments_then_labels_and_fills_the_rest() -> None:
    files = names(30)
    labeled: dict[str, Split] = {files[0]: "test", files[1]: "test", files[2]: "val"}
    config = SplitConfig("partial", 0.8, 0.2, 0.0, 42, {files[1]: "train", "not-in-dataset.jpg": "val"})
    result = assign(files, labeled, {}, config)
    assert list(result) == files
    assert (result[files[0]], result[files[1]], result[files[2]]) == ("test", "train", "val")
    rest = {f: s for f, s in result.items() if f not in files[:3]}
    assert counts(rest) == (22, 5, 0)  # 27 unassigned images at 80/20, largest remainder: 21.6 / 5.4
    assert rest == assign(files[3:], {}, {}, AUTO)  # the automatic part is the same as auto on those images


def test_manual_uses_assignments_and_labels() -> None:
    files = names(3)
    config = SplitConfig("manual", assignments={files[0]: "val", files[1]: "test"})
    assert assign(files, {files[2]: "train", files[1]: "val"}, {}, config) == {
        files[0]: "val",
        files[1]: "test",
        files[2]: "train",
    }


def test_manual_with_unassigned_images_raises_with_every_missing_image() -> None:
    files = names(4)
    config = SplitConfig("manual", assignments={files[0]: "train"})
    with pytest.raises(SplitError) as err:
        assign(files, {files[1]: "val"}, {}, config)
    assert [(p.code, p.file) for p in err.value.problems] == [
        ("split_unassigned", f"images/{files[2]}"),
        ("split_unassigned", f"images/{files[3]}"),
    ]


def test_manual_problems_are_capped() -> None:
    with pytest.raises(SplitError) as err:
        assign(names(250), {}, {}, SplitConfig("manual"))
    problems = err.value.problems
    assert len(problems) == 201
    assert problems[-1].code == "too_many_problems" and "50 more" in problems[-1].message


# --- reading strata and labels from documents ---------------------------------------------------


def doc(*images: tuple[str, list[str], Any]) -> dict[str, Any]:
    """A minimal document: (file_name, class names of its annotations, split field or None)."""
    classes = sorted({c for _, labels, _ in images for c in labels})
    ids = {c: i for i, c in enumerate(classes)}
    return {
        "classes": [{"id": i, "name": c} for c, i in ids.items()],
        "images": [
            {
                "id": n,
                "file_name": f,
                **({"split": split} if split is not None else {}),
                "annotations": [
                    {"id": k, "image_id": n, "class_id": ids[c], "class_name": c} for k, c in enumerate(labels)
                ],
            }
            for n, (f, labels, split) in enumerate(images)
        ],
    }


def test_strata_from_docs_dominant_class_across_tasks() -> None:
    docs: dict[Task, dict[str, Any]] = {
        "detection": doc(("a.jpg", ["dent", "dent", "scratch"], None), ("b.jpg", ["scratch", "dent"], None)),
        "classification": doc(("a.jpg", ["scratch"], None), ("c.jpg", ["ok"], None), ("d.jpg", [], None)),
    }
    # a: dent 2 vs scratch 2 -> tie broken by name; b: tie -> dent; d: no class -> absent.
    assert strata_from_docs(docs) == {"a.jpg": "dent", "b.jpg": "dent", "c.jpg": "ok"}
    docs["segmentation"] = doc(("a.jpg", ["scratch"], None))
    assert strata_from_docs(docs)["a.jpg"] == "scratch"


def test_labeled_splits_first_task_wins_and_invalid_values_are_ignored() -> None:
    docs: dict[Task, dict[str, Any]] = {
        "detection": doc(("a.jpg", [], "val"), ("b.jpg", [], "test"), ("sub\\c.jpg", [], "val")),
        "classification": doc(("a.jpg", [], "train"), ("b.jpg", [], "holdout"), ("e.jpg", [], None)),
    }
    assert labeled_splits(docs) == {"a.jpg": "train", "b.jpg": "test", "sub/c.jpg": "val"}
