"""`vtp batch` uploads a folder (zipped on the fly) or a zip, watches the batch to its end and downloads
its results; `vtp batches ls|show|watch|results|cancel`."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import Vtp

pytestmark = pytest.mark.integration
Deployed = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def test_batch_of_a_folder_is_watched_and_its_results_downloaded(
    vtp: Vtp, deployed: Deployed, dataset_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    sources = sorted(dataset_dir.rglob("*.jpg"))[:5]
    for source in sources[:3]:
        (photos / source.name).write_bytes(source.read_bytes())
    for source in sources[3:]:
        (photos / "sub" / source.name).write_bytes(source.read_bytes())
    (photos / "notes.txt").write_text("not an image")
    saved = tmp_path / "rows.jsonl"
    result = vtp("batch", "cli-shapes", str(photos), "conf=0.001", "-o", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "zipped 5 image(s)" in result.stdout and "succeeded 5/5 images" in result.stdout, result.stdout
    batch_id = re.search(r"^batch ([0-9a-f-]{36}) queued", result.stdout, re.M)
    assert batch_id, result.stdout
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [r["file"] for r in rows] == sorted([s.name for s in sources[:3]] + [f"sub/{s.name}" for s in sources[3:]])
    assert all(r["width"] == 96 for r in rows)

    listed = vtp.json("batches", "ls", "cli-shapes")["items"]
    assert batch_id.group(1) in [b["id"] for b in listed]
    shown = vtp("batches", "show", "cli-shapes", batch_id.group(1))
    assert shown.returncode == 0 and "succeeded 5/5 images" in shown.stdout
    coco = vtp("batches", "results", deployed[1]["id"], batch_id.group(1), "--format", "coco", "-o", str(tmp_path))
    assert coco.returncode == 0, coco.stderr
    document = json.loads((tmp_path / f"batch-{batch_id.group(1)}.coco.json").read_text())
    assert len(document["images"]) == 5
    ended = vtp("batches", "cancel", "cli-shapes", batch_id.group(1))
    assert ended.returncode == 1 and "batch_finished" in ended.stderr


def test_batch_of_a_zip_returns_at_once_and_is_watched_later(
    vtp: Vtp, deployed: Deployed, dataset_dir: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for source in sorted(dataset_dir.rglob("*.jpg"))[:3]:
            zf.write(source, source.name)
    queued = vtp.json("batch", "cli-shapes", str(archive), "max_det=5", "--no-watch")
    assert queued["status"] in ("queued", "running", "succeeded") and queued["parameters"]["max_det"] == 5
    watched = vtp("batches", "watch", "cli-shapes", queued["id"])
    assert watched.returncode == 0 and "succeeded 3/3 images" in watched.stdout, watched.stdout + watched.stderr
    bad = vtp("batch", "cli-shapes", str(archive), "conf=7")
    assert bad.returncode == 1 and "#/conf" in bad.stderr
    usage = vtp("batch", "cli-shapes", str(archive), "snapshot=x")
    assert usage.returncode == 2
