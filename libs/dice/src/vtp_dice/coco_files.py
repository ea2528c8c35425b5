"""Finding COCO annotation files in an upload and the image file each COCO image names.

A COCO file is any JSON object with `images` and `annotations` lists (instances_*.json,
person_keypoints_*.json, Roboflow's _annotations.coco.json ...). Its split comes from its
name or folder (`instances_val2017.json` -> val). Images are looked up next to the file, in
`images/`, `images/{split}/`, `{split}/` and `val2017/`-style folders, else by a unique
path suffix anywhere in the archive.
"""

from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from typing import Any

from vtp_dice.archive import DiceArchive
from vtp_dice.format import ANNOTATION_FILES, LEGACY_ANNOTATION_FILE, METADATA_FILE, Problem
from vtp_dice.import_source import is_image

_NOT_COCO = frozenset({*ANNOTATION_FILES.values(), LEGACY_ANNOTATION_FILE, METADATA_FILE, "dice_classes.json"})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_candidates(archive: DiceArchive) -> list[str]:
    return sorted(r for r in archive.entries if r.lower().endswith(".json") and r.split("/")[-1] not in _NOT_COCO)


def read_coco(archive: DiceArchive, rel: str) -> dict[str, Any] | Problem:
    """A COCO document, or the problem with the file (not JSON, not a COCO object)."""
    shown = archive.root + rel
    raw = archive.read_entry(rel, archive.limits.max_json_bytes, "json_too_large")
    try:
        doc = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        return Problem("invalid_json", f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})", shown)
    except (ValueError, RecursionError) as e:
        return Problem("invalid_json", f"not valid UTF-8 JSON: {e}", shown)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        return Problem("coco_invalid", "a COCO file is an object with images, annotations and categories", shown, "")
    return doc


def is_coco(archive: DiceArchive, rel: str) -> bool:
    """Cheap look at a JSON file: does it hold the COCO keys (reads the file; sizes are capped)."""
    doc = read_coco(archive, rel)
    return isinstance(doc, dict) and isinstance(doc.get("annotations"), list)


class ImageFinder:
    """COCO `file_name` -> the archive entry, searched where exporters put images."""

    def __init__(self, archive: DiceArchive) -> None:
        self.entries = archive.entries
        self.by_base: dict[str, list[str]] = defaultdict(list)
        for rel in archive.entries:
            if is_image(rel):
                self.by_base[rel.rsplit("/", 1)[-1]].append(rel)

    def find(self, coco_file: str, split: str | None, file_name: str) -> tuple[str | None, str]:
        """The entry for `file_name` named in `coco_file`, or None and why not."""
        here = posixpath.dirname(coco_file)
        parent = posixpath.dirname(here)
        stem_tail = posixpath.splitext(coco_file.rsplit("/", 1)[-1])[0].rsplit("_", 1)[-1]  # val2017
        folders = [(here,), (here, "images"), (parent, "images"), ("images",), (), (stem_tail,), ("images", stem_tail)]
        if split:
            folders += [("images", split), (split,), (parent, split)]
        for folder in folders:
            rel = "/".join(p for p in (*folder, file_name) if p)
            if rel in self.entries:
                return rel, ""
        matches = [r for r in self.by_base.get(file_name.rsplit("/", 1)[-1], []) if r.endswith("/" + file_name)]
        if len(matches) == 1:
            return matches[0], ""
        if matches:
            return None, f"{file_name!r} matches {len(matches)} files of the archive: {', '.join(matches[:3])}"
        return None, f"{file_name!r} is not in the archive (looked next to the file, in images/ and split folders)"
