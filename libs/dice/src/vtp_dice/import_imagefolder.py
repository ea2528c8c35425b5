"""Import a YOLO classification dataset (the ImageFolder layout `{split}/{class}/<image>`) into DICE.

Classes are the class folders of every split, sorted by name (Ultralytics' order), empty
folders included; each image's split is its top folder (`valid` and `validation` count as val).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import Any

from vtp_dice.archive import DiceArchive
from vtp_dice.format import ANNOTATION_FILES, Problem, Split, pointer
from vtp_dice.import_source import Docs, Imported, SourceMap, Spot, dice_doc, dice_names, image_size_problem, is_image
from vtp_dice.import_source import split_of as split_in
from vtp_dice.manifest import ImageEntry

DICE_FILE = ANNOTATION_FILES["classification"]


def _split_folder(top: str) -> Split | None:
    return split_in(top) if top.lower() in ("train", "val", "valid", "validation", "test") else None


def looks_like_imagefolder(archive: DiceArchive) -> bool:
    """Images in `{split}/{class}/...` at the root."""
    return any(is_image(r) and r.count("/") >= 2 and _split_folder(r.split("/", 1)[0]) for r in archive.entries)


def import_imagefolder(archive: DiceArchive) -> Imported:
    problems: list[Problem] = []
    found: dict[str, tuple[Split, str, str]] = {}  # entry -> (split, class, name inside the class folder)
    classes = {d.split("/")[1] for d in archive.dirs if d.count("/") == 2 and _split_folder(d.split("/")[0])}
    for rel in sorted(archive.entries):
        if not is_image(rel):
            continue
        parts = rel.split("/")
        split = _split_folder(parts[0])
        if split is None or len(parts) < 3:
            msg = "an image of a classification dataset must be in {split}/{class}/ (split: train, val or test)"
            problems.append(Problem("imagefolder_image_outside_class", msg, archive.root + rel))
            continue
        found[rel] = (split, parts[1], "/".join(parts[2:]))
        classes.add(parts[1])
    names = sorted(classes)
    index = {n: i for i, n in enumerate(names)}
    dice = dice_names({rel: (f"{split}/{cls}", name) for rel, (split, cls, name) in found.items()})
    images: dict[str, zipfile.ZipInfo] = {}
    sources = SourceMap()
    for rel, name in dice.items():
        info = archive.entries[rel]
        too_large = image_size_problem(archive.root + rel, info, archive.limits.max_image_bytes)
        if too_large is not None:
            problems.append(too_large)
        images[name], sources.images[name] = info, archive.root + rel
    if not found:
        problems.append(Problem("imagefolder_no_images", "no image in {split}/{class}/ folders"))

    def build(entries: Mapping[str, ImageEntry]) -> Docs:
        records: list[dict[str, Any]] = []
        for i, n in enumerate(names):
            folder = f"{archive.root}{{split}}/{n}/"
            sources.add(DICE_FILE, pointer("classes", i, "name"), Spot(folder))
        for rel, (split, cls, _) in sorted(found.items(), key=lambda kv: dice[kv[0]]):
            entry = entries.get(dice[rel])
            if entry is None:
                continue
            k = len(records) + 1
            sources.add(DICE_FILE, pointer("images", k - 1), Spot(archive.root + rel))
            ann = {"id": k, "image_id": k, "class_id": index[cls], "class_name": cls}
            records.append(
                {"id": k, "file_name": dice[rel], "width": entry.width, "height": entry.height, "split": split}
                | {"annotations": [ann]}
            )
        doc_classes = [{"id": i, "name": n} for i, n in enumerate(names)]
        return {"classification": dice_doc("classification", doc_classes, records, "yolo")}

    return Imported("yolo", images, build, sources, problems)
