"""data.yaml of a YOLO dataset: class names, keypoint shape and names, the folder of each split.

Each function reads one part and appends what is wrong to `problems`, with the JSON pointer of
the key in data.yaml, so every problem of the file is reported at once.
"""

from __future__ import annotations

from typing import Any

from vtp_dice.archive import DiceArchive
from vtp_dice.format import SPLITS, Problem, Split, pointer
from vtp_dice.yolo import _flip_idx
from vtp_dice.yolo_labels import SHAPE

YAML_INVALID = "yolo_yaml_invalid"


def names(value: Any, file: str, problems: list[Problem]) -> list[str]:
    if isinstance(value, list):
        return [str(v) if isinstance(v, int | float) else v for v in value]
    if isinstance(value, dict) and value and all(isinstance(k, int) for k in value):
        if sorted(value) != list(range(len(value))):  # an index YOLO labels use must stay that index
            problems.append(Problem("yolo_names_invalid", "names keys must be 0..n-1 without gaps", file, "/names"))
        return [value[k] for k in sorted(value)]
    problems.append(Problem("yolo_names_invalid", "names must be a list or a mapping index -> name", file, "/names"))
    return []


def kpt_shape(data: dict[str, Any], file: str, problems: list[Problem]) -> SHAPE | None:
    shape = data.get("kpt_shape")
    if shape is None:
        return None
    if isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) for v in shape):  # noqa: SIM102
        if shape[0] >= 1 and shape[1] in (2, 3):
            return shape[0], shape[1]
    problems.append(Problem(YAML_INVALID, "kpt_shape must be [keypoints, 2 or 3]", file, "/kpt_shape"))
    return None


def split_dirs(
    archive: DiceArchive, data: dict[str, Any], file: str, problems: list[Problem]
) -> list[tuple[Split, str]]:
    """(split, folder) for every folder data.yaml names, resolved inside the archive."""
    out: list[tuple[Split, str]] = []
    for split in SPLITS:
        value = data.get(split)
        for i, item in enumerate(value if isinstance(value, list) else [] if value is None else [value]):
            at = pointer(split, i) if isinstance(value, list) else pointer(split)
            if not isinstance(item, str):
                problems.append(Problem(YAML_INVALID, f"{split} must name a folder", file, at))
            elif item.lower().endswith(".txt"):
                msg = "image lists (.txt) are not supported: name the folder of the images"
                problems.append(Problem("yolo_split_list_unsupported", msg, file, at))
            elif (folder := resolve(archive, item)) is None:
                problems.append(Problem("yolo_split_missing", f"{item!r} is not a folder of the archive", file, at))
            else:
                out.append((split, folder))
    if not out and not problems:
        problems.append(Problem("yolo_split_missing", "data.yaml names no train, val or test folder", file, "/train"))
    return out


def resolve(archive: DiceArchive, item: str) -> str | None:
    """A folder path from data.yaml inside the archive: `path`, `..` and absolute prefixes dropped."""
    parts = [p for p in item.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    for i in range(len(parts)):  # the longest tail of the path that the archive holds
        folder = "/".join(parts[i:])
        if any(r.startswith(folder + "/") for r in archive.entries):
            return folder
    return None


def keypoints(data: dict[str, Any], shape: SHAPE | None, n: int, file: str, problems: list[Problem]) -> list[list[str]]:
    """Keypoint names per class: `kpt_names`, else names that give back `flip_idx` (left_kpI / right_kpI)."""
    if shape is None:
        return []
    flip = data.get("flip_idx")
    default = [f"kp{k}" for k in range(shape[0])]
    if isinstance(flip, list) and sorted(flip) == list(range(shape[0])):
        for k, j in enumerate(flip):
            if j != k:
                default[k] = f"left_kp{min(k, j)}" if k < j else f"right_kp{min(k, j)}"
    given = data.get("kpt_names")
    per_class = [given.get(i, default) if isinstance(given, dict) else given or default for i in range(n)]
    out = []
    for i, names in enumerate(per_class):
        if not isinstance(names, list) or len(names) != shape[0] or not all(isinstance(v, str) for v in names):
            problems.append(Problem(YAML_INVALID, f"kpt_names must list {shape[0]} names", file, "/kpt_names"))
            names = default
        if flip is not None and _flip_idx(names) != flip:  # the download derives flip_idx from the names
            msg = f"flip_idx {flip} does not follow from the keypoint names (left_*/right_* pairs) of class {i}"
            problems.append(Problem("yolo_flip_idx_unrepresentable", msg, file, "/flip_idx"))
        out.append(list(names))
    return out
