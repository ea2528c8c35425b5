"""`vtp deploy` prints the endpoint and a curl line that works; `vtp deployments ...`; `vtp predict`
prints detections and draws them with --save."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .conftest import Vtp, eventually

pytestmark = pytest.mark.integration
Deployed = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def test_deploy_prints_a_curl_line_that_works(vtp: Vtp, deployed: Deployed, dataset_dir: Path) -> None:
    result, deployment = deployed
    assert deployment["status"] == "ready" and deployment["name"] == "cli-shapes"
    endpoint = f"{vtp.url}/api/v1/deployments/{deployment['id']}/predict"
    assert f"endpoint   {endpoint}" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("try "))
    command = line.removeprefix("try").strip().replace("image.jpg", str(next(dataset_dir.rglob("*.jpg"))))
    answer = subprocess.run(["bash", "-c", command], env=vtp.env(), capture_output=True, text=True, check=False)
    assert answer.returncode == 0 and json.loads(answer.stdout)["images"][0]["width"] == 96


def test_deployments_ls_show_stop_start_rollback(vtp: Vtp, deployed: Deployed, dataset_dir: Path) -> None:
    deployment = deployed[1]
    assert deployment["id"] in [d["id"] for d in vtp.json("deployments", "ls")["items"]]
    assert "cli-shapes" in vtp("deployments", "show", deployment["id"]).stdout
    assert vtp.json("deployments", "stop", "cli-shapes")["status"] == "stopped"
    stopped = vtp("predict", "cli-shapes", str(next(dataset_dir.rglob("*.jpg"))))
    assert stopped.returncode == 1 and "(deployment_not_ready, HTTP 409)" in stopped.stderr
    assert vtp.json("deployments", "start", "cli-shapes")["status"] == "ready"
    never_switched = vtp("deployments", "rollback", "cli-shapes")
    assert never_switched.returncode == 1 and "no_previous_export" in never_switched.stderr
    assert vtp("deployments", "show", "no-such-name").returncode == 3
    assert vtp("deployments", "show", str(uuid.uuid4())).returncode == 3


def test_predict_prints_detections_and_saves_drawn_images(
    vtp: Vtp, deployed: Deployed, dataset_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted(dataset_dir.rglob("*.jpg"))[:3]:
        (photos / source.name).write_bytes(source.read_bytes())
    out = tmp_path / "out"
    result = vtp("predict", "cli-shapes", str(photos), "conf=0.001", "--save", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("detection(s)") == 3 and "3 image(s) by cli-shapes" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in photos.iterdir())
    answer = vtp.json("predict", deployed[1]["id"], str(photos), "conf=0.001")
    assert [Path(i["file"]).name for i in answer["images"]] == sorted(p.name for p in photos.iterdir())
    assert answer["parameters"]["conf"] == 0.001
    boxes = [(Path(i["file"]).name, d) for i in answer["images"] for d in i["detections"]]
    assert boxes, "a trained model finds something at conf 0.001"
    name, first = boxes[0]
    x1, y1, _, y2 = (round(v) for v in first["xyxy"])
    drawn, original = Image.open(out / name).convert("RGB"), Image.open(photos / name).convert("RGB")
    edge = (min(max(x1, 0), 95), min(max((y1 + y2) // 2, 0), 95))
    assert drawn.getpixel(edge) != original.getpixel(edge)  # the box's left edge is drawn
    refused = vtp("predict", "cli-shapes", str(photos), "conf=7")
    assert refused.returncode == 1 and "#/conf" in refused.stderr

    # Usage is flushed every few seconds: the 6 images predicted above, and the refused request's error.
    report = eventually(lambda: (u := vtp.json("usage", "cli-shapes"))["total"]["images"] >= 6 and u, 60)
    assert report["deployment_id"] == deployed[1]["id"] and report["total"]["requests"] >= 2
    table = vtp("usage", "cli-shapes")
    assert table.returncode == 0 and "total" in table.stdout
