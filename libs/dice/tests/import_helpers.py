"""Run an upload through the import path as the datasets service does, and rebuild its downloads."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from vtp_dice.archive import ArchiveLimits, open_archive
from vtp_dice.coco import coco_plan
from vtp_dice.detect_format import import_archive
from vtp_dice.format import DatasetRejected, Split, Task
from vtp_dice.imagefolder import imagefolder_plan
from vtp_dice.import_check import check_import
from vtp_dice.manifest import ImageEntry, Manifest
from vtp_dice.splits import DEFAULT_SPLIT, assign, labeled_splits, strata_from_docs
from vtp_dice.yolo import yolo_plan

Docs = dict[Task, dict[str, Any]]


def imported(tmp_path: Path, data: bytes, fmt: str = "auto") -> tuple[Docs, dict[str, ImageEntry]]:
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    with open_archive(path, require_annotations=False) as archive:
        found = import_archive(archive, fmt)
        assert found is not None, "a DICE upload"
        return check_import(archive, found, ArchiveLimits(), 1)


def problems(tmp_path: Path, data: bytes, fmt: str = "auto") -> list[dict[str, Any]]:
    with pytest.raises(DatasetRejected) as exc:
        imported(tmp_path, data, fmt)
    return [p.as_dict() for p in exc.value.problems]


def downloads(docs: Docs, images: dict[str, ImageEntry], fmt: str, task: Task) -> dict[str, bytes]:
    """The small files of a download (labels, data.yaml, COCO JSON) with the stored (labeled) split."""
    manifest = Manifest({t: "0" * 64 for t in docs}, tuple(images[n] for n in sorted(images)))
    names = sorted(images)
    splits: dict[str, Split] = dict(assign(names, labeled_splits(docs), strata_from_docs(docs), DEFAULT_SPLIT))
    if task == "classification":
        plan = imagefolder_plan(manifest, docs, splits)
        return {**plan.files, **{rel: b"" for rel in plan.images}}
    plan = yolo_plan(task, manifest, docs, splits, None) if fmt == "yolo" else coco_plan(task, manifest, docs, splits)
    return plan.files


def zip_files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def rezip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def numbers(text: bytes) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in text.decode().splitlines() if line.strip()]


def same_numbers(a: list[list[float]], b: list[list[float]], tol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(abs(u - v) <= tol for u, v in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


def coco_json(files: dict[str, bytes], path: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(files[path])
    return doc
