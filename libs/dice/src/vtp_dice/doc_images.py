"""The images an annotation document lists, read tolerantly (the document may be invalid).

Canonical form for storage, the image files a document references, and each image's class
names; malformed entries are skipped here, since validation reports them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from vtp_dice.format import Task, normalize_file_name
from vtp_dice.schema import is_int


def canonicalize_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """A deep copy in stored form: image file names normalized; everything else (statistics too) kept."""
    out = copy.deepcopy(doc)
    for norm, img in _images(out):  # invalid names stay as given: validation rejects them anyway
        img["file_name"] = norm
    return out


def _images(doc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(normalized file name, image) for each usable image entry; tolerant of invalid documents."""
    listed = doc.get("images")
    images = [img for img in (listed if isinstance(listed, list) else []) if isinstance(img, dict)]
    names = [(img.get("file_name"), img) for img in images]
    return [(norm, img) for name, img in names if isinstance(name, str) and (norm := normalize_file_name(name))]


def referenced_images(doc: Mapping[str, Any]) -> set[str]:
    """Normalized file names of every image the document lists."""
    return {name for name, _ in _images(doc)}


def image_classes(task: Task, doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """file_name -> class names of its annotations, in order (empty for a background image).

    Every task labels classes the same way; `task` is taken so callers need not rely on that.
    """
    del task
    listed = doc.get("classes")
    classes = [c for c in (listed if isinstance(listed, list) else []) if isinstance(c, dict) and is_int(c.get("id"))]
    table = {c["id"]: c.get("name") for c in classes}
    out: dict[str, list[str]] = {}
    for name, img in _images(doc):
        anns = img.get("annotations")
        labels = out.setdefault(name, [])
        for ann in anns if isinstance(anns, list) else []:
            if not isinstance(ann, dict):
                continue
            cid = ann.get("class_id")
            label = table.get(cid, ann.get("class_name")) if is_int(cid) else ann.get("class_name")
            if isinstance(label, str):
                labels.append(label)
    return out
