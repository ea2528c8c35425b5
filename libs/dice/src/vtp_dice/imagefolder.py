"""The ImageFolder layout (torchvision) for classification: one folder per class in each split."""

from __future__ import annotations

from collections.abc import Mapping

from vtp_dice.format import SPLITS, Split, Task
from vtp_dice.layout import Doc, Plan, classes_file, task_items
from vtp_dice.manifest import Manifest


def _safe_dir(name: str) -> str:
    # Class names become folder names (ImageFolder's labels); keep them a single path segment.
    cleaned = name.replace("/", "_").replace("\\", "_").strip()
    return "_" + cleaned if cleaned in ("", ".", "..") or cleaned.startswith(".") else cleaned


def imagefolder_plan(manifest: Manifest, docs: Mapping[Task, Doc], splits: Mapping[str, Split]) -> Plan:
    """`{split}/{class}/<image>`; images with no class (or disagreeing classes) are left out.

    Every class folder exists in every split, so each split's sorted folder list (the labels
    torchvision's ImageFolder assigns) is the same.
    """
    doc = docs["classification"]
    items, plan = task_items(manifest, doc, splits), Plan()
    folders = {c["id"]: _safe_dir(c["name"]) for c in doc["classes"]}
    if len(set(folders.values())) < len(folders):  # two labels in one folder would silently merge classes
        raise ValueError(f"class names collide as folder names: {sorted(folders.values())}")
    kept = []
    for item in items:
        labels = {a["class_id"] for a in item.record["annotations"]}
        if len(labels) == 1:
            plan.images[f"{item.split}/{folders[labels.pop()]}/{item.name}"] = item.entry
            kept.append(item)
    used = {s for s in SPLITS if any(i.split == s for i in kept)} | {"train", "val"}
    plan.dirs += [f"{split}/{folder}" for split in SPLITS if split in used for folder in sorted(folders.values())]
    plan.files["dice_classes.json"] = classes_file("classification", doc, kept)
    return plan
