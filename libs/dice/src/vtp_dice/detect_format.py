"""Which format an uploaded zip is in: DICE, YOLO (data.yaml, or ImageFolder for classification) or COCO.

Detection looks at the content, in this order: DICE annotation files; a YOLO yaml at the root;
a COCO JSON file; the ImageFolder layout; a `labels/` folder (YOLO without its yaml); an
`images/` folder or metadata.json (DICE without annotation files). Nothing else matches.
"""

from __future__ import annotations

from typing import Literal

from vtp_dice.archive import DiceArchive
from vtp_dice.coco_files import is_coco, json_candidates
from vtp_dice.format import IMAGES_DIR, METADATA_FILE, DatasetRejected, Problem
from vtp_dice.import_coco import import_coco
from vtp_dice.import_imagefolder import import_imagefolder, looks_like_imagefolder
from vtp_dice.import_source import Imported
from vtp_dice.import_yolo import find_yaml, import_yolo

Format = Literal["dice", "yolo", "coco"]
FORMATS: tuple[str, ...] = ("dice", "yolo", "coco", "auto")


def detect_format(archive: DiceArchive) -> Format:
    """The upload's format; raises DatasetRejected(unknown_dataset_format) when none matches."""
    if archive.annotation_files:
        return "dice"
    if find_yaml(archive) is not None:
        return "yolo"
    if any(is_coco(archive, rel) for rel in json_candidates(archive)):
        return "coco"
    if looks_like_imagefolder(archive):
        return "yolo"
    if any(r.startswith("labels/") or "/labels/" in r for r in archive.entries):
        return "yolo"
    if archive.images or archive.metadata is not None or any(d == IMAGES_DIR for d in archive.dirs):
        return "dice"  # DICE without its annotation files: the DICE check says which are missing
    msg = (
        "not a DICE, YOLO or COCO dataset: DICE needs annotations_<task>.json, YOLO a data.yaml (or "
        f"{{split}}/{{class}}/ folders), COCO a JSON file with images, annotations and categories; {METADATA_FILE} "
        "and images/ alone are DICE"
    )
    raise DatasetRejected([Problem("unknown_dataset_format", msg)])


def import_archive(archive: DiceArchive, fmt: str) -> Imported | None:
    """The upload converted from YOLO or COCO (`fmt` or detected); None for a DICE upload."""
    kind = detect_format(archive) if fmt == "auto" else fmt
    if kind == "dice":
        return None
    if kind == "coco":
        return import_coco(archive)
    if find_yaml(archive) is None and looks_like_imagefolder(archive):
        return import_imagefolder(archive)
    return import_yolo(archive)
