"""Import an Ultralytics YOLO dataset (detect, segment, pose) into DICE (docs/datasets.md, "Import").

`data.yaml` names the classes and the image folder of each split; each image's label file is
found the Ultralytics way (the last `images/` of its path becomes `labels/`, suffix `.txt`).
Every problem names the original file: data.yaml with the JSON pointer of the key, a label
file with its line.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import yaml

from vtp_dice import yolo_yaml
from vtp_dice.archive import DiceArchive
from vtp_dice.format import ANNOTATION_FILES, Problem, Split, Task, pointer
from vtp_dice.import_source import Docs, Imported, SourceMap, Spot, dice_doc, dice_names, image_size_problem, is_image
from vtp_dice.manifest import ImageEntry
from vtp_dice.yolo_labels import SHAPE, Row, check_line, read_lines, row_task, to_dice
from vtp_dice.yolo_yaml import YAML_INVALID


def find_yaml(archive: DiceArchive) -> str | None:
    """The dataset's yaml at the root: data.yaml, else the only *.yaml / *.yml."""
    found = sorted(r for r in archive.entries if "/" not in r and r.lower().endswith((".yaml", ".yml")))
    return "data.yaml" if "data.yaml" in found else found[0] if len(found) == 1 else None


def label_path(image: str) -> str:
    """Ultralytics' img2label_paths: the last `/images/` becomes `/labels/`, the suffix `.txt`."""
    full = "/" + image
    if "/images/" in full:
        full = "/labels/".join(full.rsplit("/images/", 1))
    return str(PurePosixPath(full[1:]).with_suffix(".txt"))


def import_yolo(archive: DiceArchive) -> Imported:
    """Read data.yaml, the split folders and every label file; DICE documents come from `build`."""
    problems: list[Problem] = []
    yaml_file = find_yaml(archive)
    if yaml_file is None:
        msg = "a YOLO dataset needs data.yaml at its root (names, train/val/test folders)"
        return _failed([Problem("yolo_data_yaml_missing", msg)])
    shown = archive.root + yaml_file
    try:
        data = yaml.safe_load(archive.read_entry(yaml_file, archive.limits.max_json_bytes, "yaml_too_large"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return _failed([Problem(YAML_INVALID, f"not valid YAML: {exc}", shown)])
    if not isinstance(data, dict):
        return _failed([Problem(YAML_INVALID, "data.yaml must be a mapping", shown, "")])
    names = yolo_yaml.names(data.get("names"), shown, problems)
    shape = yolo_yaml.kpt_shape(data, shown, problems)
    keypoints = yolo_yaml.keypoints(data, shape, len(names), shown, problems)
    splits = yolo_yaml.split_dirs(archive, data, shown, problems)
    if problems:
        return _failed(problems)
    found: dict[str, tuple[Split, str, str]] = {}  # image entry -> (split, name in its folder, label file)
    for split, folder in splits:
        for rel in sorted(r for r in archive.entries if r.startswith(folder + "/") and is_image(r)):
            if rel in found:
                msg = f"listed by both {found[rel][0]} and {split}; an image has one split"
                problems.append(Problem("yolo_image_in_two_splits", msg, archive.root + rel))
                continue
            found[rel] = (split, rel[len(folder) + 1 :], label_path(rel))
    labels = {lab for _, _, lab in found.values()}
    label_dirs = {posixpath.dirname(label_path(folder + "/x.jpg")) for _, folder in splits}
    for rel in sorted(archive.entries):
        in_label_dir = any(rel.startswith(d + "/") for d in label_dirs)
        if in_label_dir and rel.endswith(".txt") and rel not in labels and rel not in found:
            msg = "no image of any split has this label file"
            problems.append(Problem("yolo_label_without_image", msg, archive.root + rel))
    if not found:
        problems.append(Problem("yolo_no_images", "no image in the folders data.yaml names", shown))
    rows: dict[str, list[Row]] = {}
    cap = archive.limits.max_problems
    for lab in sorted(labels & set(archive.entries)):
        raw = archive.read_entry(lab, archive.limits.max_json_bytes, "label_too_large")
        rows[lab], bad = read_lines(archive.root + lab, raw)
        problems += bad
        if len(problems) > cap:  # a hopeless upload: stop before its problems cost more than its bytes
            return _too_many(problems, cap)
    task: Task = "pose" if shape is not None else row_task([r for rs in rows.values() for r in rs])
    for lab, rs in rows.items():
        problems += [p for r in rs for p in check_line(archive.root + lab, r, task, len(names), shape)]
        if len(problems) > cap:
            return _too_many(problems, cap)
    return _imported(archive, shown, task, names, (shape, keypoints), found, rows, problems)


def _imported(
    archive: DiceArchive,
    shown: str,
    task: Task,
    names: list[str],
    pose: tuple[SHAPE | None, list[list[str]]],
    found: dict[str, tuple[Split, str, str]],
    rows: dict[str, list[Row]],
    problems: list[Problem],
) -> Imported:
    shape, keypoints = pose
    dice = dice_names({rel: (split, name) for rel, (split, name, _) in found.items()})
    images: dict[str, zipfile.ZipInfo] = {}
    sources = SourceMap()
    for rel, name in dice.items():
        info = archive.entries[rel]
        too_large = image_size_problem(archive.root + rel, info, archive.limits.max_image_bytes)
        if too_large is not None:
            problems.append(too_large)
        images[name], sources.images[name] = info, archive.root + rel
    dice_file = ANNOTATION_FILES[task]
    bad_rows = {(p.file, p.line) for p in problems if p.line is not None}

    def build(entries: Mapping[str, ImageEntry]) -> Docs:
        classes: list[dict[str, Any]] = [{"id": i, "name": n} for i, n in enumerate(names)]
        for i, c in enumerate(classes):
            sources.add(dice_file, pointer("classes", i, "name"), Spot(shown, pointer("names", i)))
            if keypoints:
                c["keypoints"] = keypoints[i]
        records: list[dict[str, Any]] = []
        ann_id = 0
        for rel, (split, _, lab) in sorted(found.items(), key=lambda kv: dice[kv[0]]):
            entry = entries.get(dice[rel])
            if entry is None:  # undecodable: reported by the probe
                continue
            k = len(records)
            sources.add(dice_file, pointer("images", k), Spot(archive.root + rel))
            anns: list[dict[str, Any]] = []
            for row in rows.get(lab, []):
                if (archive.root + lab, row.line) in bad_rows:
                    continue
                ann_id += 1
                cls = int(row.values[0])
                at = pointer("images", k, "annotations", len(anns))
                sources.add(dice_file, at, Spot(archive.root + lab, line=row.line))
                anns.append(
                    {
                        "id": ann_id,
                        "image_id": k + 1,
                        "class_id": cls,
                        "class_name": names[cls],
                        **to_dice(row, task, shape, entry.width, entry.height),
                    }
                )
            records.append(
                {
                    "id": k + 1,
                    "file_name": dice[rel],
                    "width": entry.width,
                    "height": entry.height,
                    "split": split,
                    "annotations": anns,
                }
            )
        return {task: dice_doc(task, classes, records, "yolo")}

    return Imported("yolo", images, build, sources, problems)


def _too_many(problems: list[Problem], cap: int) -> Imported:
    more = Problem("too_many_problems", f"more than {cap} problems; only the first {cap} are listed")
    return _failed([*problems[:cap], more])


def _failed(problems: list[Problem]) -> Imported:
    return Imported("yolo", {}, lambda _: {}, SourceMap(), problems)
