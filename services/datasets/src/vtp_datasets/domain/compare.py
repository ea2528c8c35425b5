"""What changed between two snapshots: images, annotations, class distribution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vtp_dice.format import canonical_json, normalize_file_name

_IGNORED_ANNOTATION_KEYS = frozenset({"id", "image_id"})  # renumbering alone is not a change


def _annotations_by_image(doc: Mapping[str, Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for image in doc.get("images", []):
        name = normalize_file_name(str(image.get("file_name", ""))) or ""
        labels = [
            canonical_json({k: v for k, v in a.items() if k not in _IGNORED_ANNOTATION_KEYS})
            for a in image.get("annotations", [])
        ]
        out[name] = canonical_json([label.decode() for label in sorted(labels)] + [image.get("split")])
    return out


def compare(
    base_images: Mapping[str, str],
    target_images: Mapping[str, str],
    base_docs: Mapping[Any, Mapping[str, Any]],
    target_docs: Mapping[Any, Mapping[str, Any]],
    base_classes: Mapping[str, Mapping[str, int]],
    target_classes: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    """Images are name -> sha256; docs are task -> annotation doc; classes task -> name -> count."""
    added = sorted(set(target_images) - set(base_images))
    removed = sorted(set(base_images) - set(target_images))
    replaced = sorted(n for n in set(base_images) & set(target_images) if base_images[n] != target_images[n])
    annotations: dict[str, dict[str, Any]] = {}
    for task in sorted(set(base_docs) | set(target_docs)):
        before = _annotations_by_image(base_docs.get(task, {}))
        after = _annotations_by_image(target_docs.get(task, {}))
        changed = sorted(n for n in set(before) & set(after) if before[n] != after[n])
        annotations[task] = {
            "status": "added" if task not in base_docs else "removed" if task not in target_docs else "present",
            "images_changed": len(changed),
            "changed": changed[:1000],
            "images_labeled_added": len(set(after) - set(before)),
            "images_labeled_removed": len(set(before) - set(after)),
        }
    delta: dict[str, dict[str, int]] = {}
    for task in sorted(set(base_classes) | set(target_classes)):
        old, new = base_classes.get(task, {}), target_classes.get(task, {})
        changes = {c: new.get(c, 0) - old.get(c, 0) for c in sorted(set(old) | set(new))}
        delta[task] = {c: d for c, d in changes.items() if d}
    return {
        "images": {
            "added": len(added),
            "removed": len(removed),
            "replaced": len(replaced),
            "added_files": added[:1000],
            "removed_files": removed[:1000],
            "replaced_files": replaced[:1000],
        },
        "annotations": annotations,
        "class_distribution_delta": delta,
    }
