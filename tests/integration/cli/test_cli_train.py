"""`vtp train` followed live, `vtp jobs ...`; an invalid config lists every problem (exit 1), an unknown
id exits 3, cancelling a finished job exits 1."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from typing import Any

import pytest

from .conftest import TRAIN_ARGS, VTP, Vtp, eventually

pytestmark = pytest.mark.integration
Trained = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def test_train_follows_the_job_live_to_its_table(trained: Trained) -> None:
    result, job = trained
    assert job["status"] == "completed" and job["config"]["epochs"] == 1 and job["config"]["imgsz"] == 64
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.split()[:1] == ["epoch"])
    assert "box_loss" in header and "mAP50-95" in header
    row = next(line for line in lines if line.split()[:1] == ["1/1"])
    assert len(row.split()) == len(header.split())  # every loss and metric has its value
    assert f"job {job['id']}" in result.stdout and "completed (attempt 1)" in result.stdout
    assert "best checkpoint" in result.stdout
    assert f"next: vtp export {job['id']} --format onnx" in result.stdout


def test_jobs_ls_show_metrics_logs(vtp: Vtp, trained: Trained) -> None:
    job = trained[1]
    assert job["id"] in [j["id"] for j in vtp.json("jobs", "ls", "--status", "completed")["items"]]
    assert "completed (attempt 1)" in vtp("jobs", "show", job["id"]).stdout
    metrics = vtp.json("jobs", "metrics", job["id"])
    assert [e["epoch"] for e in metrics["attempts"][0]["epochs"]] == [1]
    plotted = vtp("jobs", "metrics", job["id"], "--plot")
    assert plotted.returncode == 0 and "validation metrics" in plotted.stdout
    logs = vtp.json("jobs", "logs", job["id"])
    assert logs["lines"] and all({"time", "level", "message"} <= set(line) for line in logs["lines"])
    assert vtp("jobs", "logs", job["id"], "-f").returncode == 0  # a finished job: its log, then the end
    watched = vtp("jobs", "watch", job["id"])
    assert watched.returncode == 0 and "completed" in watched.stdout


def test_an_invalid_config_lists_every_problem(vtp: Vtp, trained: Trained) -> None:
    data = trained[1]["dataset_id"]
    result = vtp("train", f"data={data}", "epochs=0", "imgsz=100", "optimizer=Fast", "bogus=1")
    assert result.returncode == 1
    assert "The training request is not valid" in result.stderr and "(validation_failed, HTTP 422)" in result.stderr
    for pointer in ("#/body/config/epochs", "#/body/config/imgsz", "#/body/config/optimizer", "#/body/config/bogus"):
        assert pointer in result.stderr
    problem = json.loads(vtp("train", f"data={data}", "epochs=0", "--json").stdout)
    assert problem["errors"][0]["pointer"] == "#/body/config/epochs"
    assert vtp("train", "epochs=3").returncode == 2  # no data=: refused before anything is sent


def test_unknown_and_finished_jobs(vtp: Vtp, trained: Trained) -> None:
    result = vtp("jobs", "show", str(uuid.uuid4()))
    assert result.returncode == 3 and "(job_not_found, HTTP 404)" in result.stderr
    finished = vtp("jobs", "cancel", trained[1]["id"])
    assert finished.returncode == 1 and "job_finished" in finished.stderr


def test_ctrl_c_asks_and_cancels_the_job(vtp: Vtp, trained: Trained) -> None:
    """SIGINT while following: the prompt on stderr, `cancel` on stdin, the job ends cancelled."""
    args = ["train", f"data={trained[1]['dataset_id']}", *TRAIN_ARGS, "epochs=100", "--name", "to cancel"]
    process = subprocess.Popen(
        [str(VTP), *args],
        env=vtp.env(PYTHONUNBUFFERED="1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        job_id = re.search(r"^job ([0-9a-f-]{36}) queued", process.stdout.readline())
        assert job_id, "the first line names the job"
        # Once a runner has it, the command has long been in its follow loop.
        eventually(lambda: vtp.json("jobs", "show", job_id.group(1))["status"] == "running", 300)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate("cancel\n", timeout=300)
    finally:
        process.kill()
    assert "Cancel the job, or only stop watching it?" in err
    assert f"cancel requested for job {job_id.group(1)}" in out
    assert process.returncode == 1  # the job will not complete
    eventually(lambda: vtp.json("jobs", "show", job_id.group(1))["status"] == "cancelled", 300)
